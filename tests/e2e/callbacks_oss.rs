//! Native upload callbacks through the embedded store: the engine (OSS V4, V1 and OBS grants)
//! and Alibaba's `oss2` upload with the grant's callback, the store calls the app server back,
//! and the upload ends as one history row confirmed by the provider. A callback that fails
//! (the app server unreachable) ends in `203 CallbackFailed` and the engine's own confirmation;
//! forged, tampered and replayed callbacks, and keys from hosts off the allow-list, are refused.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_engine::events::Event;
use ferry_protocol::{ConfirmedBy, GrantRequest, Provider, Role, SignatureVersion, UploadRecord};
use ferry_tests::{TestServer, bytes, engine, within};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// A request the capturing front of the API saw.
#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An HTTP front that records every request and relays it to `upstream`: what the store's
/// callbacks look like on the wire, and what the app server answered them.
async fn capturing_front(upstream: String) -> (String, Arc<Mutex<Vec<Captured>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (log, http, upstream) = (log.clone(), http.clone(), upstream.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect();
            let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            log.lock().unwrap().push(Captured {
                path: target.to_owned(),
                headers: headers.clone(),
                body: body.to_vec(),
            });
            let mut relay = http.post(format!("{upstream}{target}"));
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    relay = relay.header(name, value);
                }
            }
            let answer = relay.body(body).send().await.expect("the API answers");
            let status = answer.status().as_u16();
            let text = answer.bytes().await.unwrap_or_default();
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                text,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn ask(provider: Provider, version: SignatureVersion) -> GrantRequest {
    GrantRequest {
        ttl_seconds: None,
        provider: Some(provider),
        signature_version: Some(version),
    }
}

/// Uploads a small file (one PUT) and a 20 MiB one (multipart) with `ask`'s grant; the rows
/// of history for them and the callback events.
async fn engine_upload(
    server: &TestServer,
    password: &str,
    ask: GrantRequest,
) -> (Vec<UploadRecord>, Vec<(bool, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cb");
    std::fs::create_dir(&folder).unwrap();
    let files = [
        ("small é.txt", bytes(1000, 1)),
        ("large.bin", bytes(20 * MIB, 2)),
    ];
    for (name, data) in &files {
        std::fs::write(folder.join(name), data).unwrap();
    }
    let (engine, recorder) = engine(server, &dir.path().join("data"), "alice", password, |c| {
        c.grant = ask.clone();
    })
    .await;
    engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    let page = server.history("alice", password).await;
    for (name, data) in &files {
        let rows: Vec<_> = page.items.iter().filter(|r| r.name == *name).collect();
        assert_eq!(
            rows.len(),
            1,
            "{name}: one row per upload: {:?}",
            page.items
        );
        let stored = server
            .server
            .object_bytes(&rows[0].bucket, &rows[0].key)
            .await;
        assert!(
            stored.unwrap().as_deref() == Some(data.as_slice()),
            "{name}: bytes differ"
        );
    }
    let callbacks = recorder
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::Callback {
                recorded, answer, ..
            } => Some((recorded, answer)),
            _ => None,
        })
        .collect();
    (page.items, callbacks)
}

async fn uploads_are_confirmed_by_the_provider(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let (rows, callbacks) = engine_upload(&server, &password, ask).await;
    for row in &rows {
        assert_eq!(row.confirmed_by, ConfirmedBy::Provider, "{row:?}");
        assert!(row.upload_id.is_some(), "{row:?}");
    }
    assert_eq!(callbacks.len(), 2, "{callbacks:?}");
    for (recorded, answer) in &callbacks {
        assert!(recorded, "the app server recorded it: {answer}");
        let record: UploadRecord = serde_json::from_str(answer).expect("the answer is a row");
        assert_eq!(record.confirmed_by, ConfirmedBy::Provider);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_v4_uploads_are_confirmed_by_the_provider() {
    uploads_are_confirmed_by_the_provider(ask(Provider::Oss, SignatureVersion::V4)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_v1_uploads_are_confirmed_by_the_provider() {
    uploads_are_confirmed_by_the_provider(ask(Provider::Oss, SignatureVersion::V1)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_uploads_are_confirmed_by_the_provider() {
    uploads_are_confirmed_by_the_provider(ask(Provider::Obs, SignatureVersion::V4)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_grants_carry_no_callback_and_are_confirmed_by_the_client() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let (rows, callbacks) =
        engine_upload(&server, &password, ask(Provider::S3, SignatureVersion::V4)).await;
    assert!(callbacks.is_empty(), "{callbacks:?}");
    assert!(
        rows.iter().all(|r| r.confirmed_by == ConfirmedBy::Client),
        "{rows:?}"
    );
}

/// An address nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

async fn a_failed_callback_falls_back_to_the_client(ask: GrantRequest) {
    let down = dead_url().await;
    let server = TestServer::start_with(|o| o.api_public_url = Some(down)).await;
    let password = server.add_user("alice", Role::User);
    let (rows, callbacks) = engine_upload(&server, &password, ask).await;
    assert!(
        rows.iter().all(|r| r.confirmed_by == ConfirmedBy::Client),
        "{rows:?}"
    );
    assert_eq!(callbacks.len(), 2, "{callbacks:?}");
    for (recorded, answer) in &callbacks {
        assert!(!recorded);
        assert!(answer.starts_with("CallbackFailed"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oss_callback_that_fails_falls_back_to_the_client_confirmation() {
    a_failed_callback_falls_back_to_the_client(ask(Provider::Oss, SignatureVersion::V4)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obs_callback_that_fails_falls_back_to_the_client_confirmation() {
    a_failed_callback_falls_back_to_the_client(ask(Provider::Obs, SignatureVersion::V4)).await
}

/// Sends `captured` (possibly changed) to the API again.
async fn resend(api: &str, captured: &Captured) -> ferry_tests::Reply {
    let mut request = reqwest::Client::new().post(format!("{api}{}", captured.path));
    for (name, value) in &captured.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    ferry_tests::Reply::from(request.body(captured.body.clone()).send().await).await
}

/// The message of a `403 forbidden` refusal.
fn refusal(reply: ferry_tests::Reply) -> String {
    assert_eq!(reply.error(403), "forbidden");
    let body: ferry_protocol::ErrorBody = serde_json::from_str(&reply.body).unwrap();
    body.message
}

fn with_header(captured: &Captured, name: &str, value: String) -> Captured {
    let mut changed = captured.clone();
    changed.headers.retain(|(n, _)| n != name);
    changed.headers.push((name.to_owned(), value));
    changed
}

/// OSS's callback signature (RSA over the MD5 of path, query and body) made with `key`.
fn oss_callback_signature(key: &rsa::PrivateKey, captured: &Captured) -> String {
    let (path, query) = captured
        .path
        .split_once('?')
        .map_or((captured.path.as_str(), None), |(p, q)| (p, Some(q)));
    let mut signed = path.as_bytes().to_vec();
    if let Some(query) = query {
        signed.extend_from_slice(format!("?{query}").as_bytes());
    }
    signed.push(b'\n');
    signed.extend_from_slice(&captured.body);
    let digest = <md5::Md5 as md5::Digest>::digest(&signed);
    let prefix: [u8; 18] = [
        0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05,
        0x00, 0x04, 0x10,
    ];
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(16),
        prefix: Box::new(prefix),
    };
    STANDARD.encode(key.sign(scheme, &digest).unwrap())
}

/// A key of the attacker's, its signature over `captured`, and a loopback server that serves
/// its public key and counts the fetches.
async fn attacker(captured: &Captured) -> (String, String, Arc<Mutex<u32>>) {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let signature = oss_callback_signature(&key, captured);
    let fetches = Arc::new(Mutex::new(0u32));
    let counter = fetches.clone();
    let app = axum::Router::new().fallback(move || {
        let (counter, pem) = (counter.clone(), pem.clone());
        async move {
            *counter.lock().unwrap() += 1;
            pem
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/pub.pem", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (signature, url, fetches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_replayed_and_untrusted_callbacks_are_refused() {
    // The API's port is fixed first, so the front can relay to it and the store calls the front.
    let api_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_addr = api_listener.local_addr().unwrap();
    drop(api_listener);
    let api = format!("http://{api_addr}");
    let (front, seen) = capturing_front(api.clone()).await;
    let server = TestServer::start_with(|o| {
        o.listen = api_addr;
        o.api_public_url = Some(front.clone());
    })
    .await;
    let password = server.add_user("alice", Role::User);
    let (rows, _) =
        engine_upload(&server, &password, ask(Provider::Oss, SignatureVersion::V4)).await;
    assert!(
        rows.iter().all(|r| r.confirmed_by == ConfirmedBy::Provider),
        "{rows:?}"
    );
    let captured: Vec<Captured> = seen.lock().unwrap().clone();
    assert_eq!(captured.len(), 2, "one callback per upload");
    let small = captured
        .iter()
        .find(|c| String::from_utf8_lossy(&c.body).contains("small"))
        .expect("the small file's callback")
        .clone();
    let row_id = rows.iter().find(|r| r.name == "small é.txt").unwrap().id;

    // A verbatim duplicate is answered like the first one, and records nothing new.
    let again = resend(&api, &small).await;
    let record: UploadRecord = again.json(200);
    assert_eq!(record.id, row_id);

    // Tampered: the body changed on the way.
    let mut tampered = small.clone();
    tampered.body = String::from_utf8(small.body.clone())
        .unwrap()
        .replace("size=1000", "size=1001")
        .into_bytes();
    assert_ne!(tampered.body, small.body);
    let refused = refusal(resend(&api, &tampered).await);
    assert!(refused.contains("signature does not match"), "{refused}");

    // The verify-callback example agrees, given the store's public key.
    let pem = reqwest::get(format!(
        "{}/_ferry/callback_pub_key.pem",
        server.server.store_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(verify_offline(&small, &pem)["valid"], true);
    let verdict = verify_offline(&tampered, &pem);
    assert_eq!(verdict["valid"], false, "{verdict}");

    // Forged: signed with the attacker's key, naming the store's (trusted) key.
    let (signature, attacker_url, fetches) = attacker(&small).await;
    let forged = with_header(&small, "authorization", signature.clone());
    let refused = refusal(resend(&api, &forged).await);
    assert!(refused.contains("signature does not match"), "{refused}");

    // Untrusted: the attacker's key, served from a host off the allow-list, is never fetched.
    let untrusted = with_header(&forged, "x-oss-pub-key-url", STANDARD.encode(&attacker_url));
    let refused = refusal(resend(&api, &untrusted).await);
    assert!(refused.contains("not on the allow-list"), "{refused}");
    assert_eq!(*fetches.lock().unwrap(), 0, "the key was fetched");

    // Replayed after the key was written again: the store holds other bytes now.
    let key = rows
        .iter()
        .find(|r| r.name == "small é.txt")
        .unwrap()
        .key
        .clone();
    overwrite(&server, &password, &key).await;
    let refused = resend(&api, &small).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let page = server.history("alice", &password).await;
    let first = page.items.iter().find(|r| r.id == row_id).unwrap();
    assert_eq!(first.confirmed_by, ConfirmedBy::Provider);
    assert_eq!(first.size, 1000, "the first row is as it was");
}

/// Writes other bytes under `key` with a fresh OSS grant of alice's (no callback).
async fn overwrite(server: &TestServer, password: &str, key: &str) {
    let session: ferry_protocol::Session = server.sign_in("alice", password).await.json(201);
    let mut client = server.anonymous();
    client.token = Some(session.token);
    let grant: ferry_protocol::Grant = client
        .post("/api/v1/grants", &json!({"provider": "s3"}))
        .await
        .json(201);
    let store = ferry_tests::StoreClient::new(grant);
    let reply = store.put(key, b"other bytes".to_vec()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Alibaba's `oss2`, given the grant's callback spec as OSS's documentation builds it
/// (`x-oss-callback` and `x-oss-callback-var` headers), uploads with a single PUT and with a
/// multipart upload: the store calls the app server back, oss2 gets its answer, and each upload
/// is one history row confirmed by the provider — no client confirmation is ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss2_uploads_with_a_callback_are_confirmed_by_the_provider() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let session: ferry_protocol::Session = server.sign_in("alice", &password).await.json(201);
    let mut alice = server.anonymous();
    alice.token = Some(session.token);
    let grant: ferry_protocol::Grant = alice
        .post("/api/v1/grants", &json!({"provider": "oss"}))
        .await
        .json(201);
    assert!(
        grant.callback.is_some(),
        "an OSS grant carries its callback"
    );
    let dir = tempfile::tempdir().unwrap();
    for (action, size) in [("put", 3000), ("multipart", 12 * MIB)] {
        let file = dir.path().join(action);
        std::fs::write(&file, bytes(size, size as u64)).unwrap();
        let key = format!("{}sdk/{action}.bin", grant.prefix);
        let case = json!({
            "grant": grant,
            "action": action,
            "key": key,
            "file": file,
            "part_size": 5 * MIB,
            "vars": {"x:upload_id": format!("oss2-{action}"), "x:name": format!("{action}.bin"),
                     "x:device": "oss2"},
        });
        let answer = crate::sdk_clients::run_sdk("oss_callback.py", &case).await;
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["sent_callback"], true, "{answer}");
        let record: UploadRecord =
            serde_json::from_str(answer["answer"].as_str().unwrap()).expect("a history row");
        assert_eq!(record.confirmed_by, ConfirmedBy::Provider, "{answer}");
        assert_eq!(record.key, key);
        assert_eq!(
            record.upload_id.as_deref(),
            Some(format!("oss2-{action}").as_str())
        );
        assert_eq!(record.size, size as u64);
    }
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 2, "{:?}", page.items);
    assert!(
        page.items
            .iter()
            .all(|r| r.confirmed_by == ConfirmedBy::Provider),
        "{:?}",
        page.items
    );
}

/// Runs the `verify-callback` example (built with the workspace) on a captured callback.
fn verify_offline(captured: &Captured, pem: &str) -> serde_json::Value {
    use std::io::Write;
    let bin = ferry_tests::ferry_bin()
        .parent()
        .unwrap()
        .join("examples")
        .join("verify-callback");
    let (path, query) = captured
        .path
        .split_once('?')
        .map_or((captured.path.as_str(), None), |(p, q)| (p, Some(q)));
    let case = json!({
        "provider": "oss",
        "method": "POST",
        "path": path,
        "query": query,
        "headers": captured.headers,
        "body": String::from_utf8_lossy(&captured.body),
        "public_key_pem": pem,
    });
    let mut child = std::process::Command::new(&bin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} must be built (cargo build --workspace --all-targets): {e}",
                bin.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// Through a broker the bucket is a cloud's, which the server cannot look into, and the body
/// of a callback is the template the client sent: a well-signed callback is still only the
/// client's word there, and history says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_for_a_clouds_bucket_is_recorded_as_the_clients_word() {
    use crate::broker_cloud::{FakeCloud, Reply, broker, sample};
    use rsa::pkcs8::DecodePrivateKey;
    let expiry = time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(3600);
    let expiry = expiry
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let answer = sample("aliyun-assume-role.json").replace("EXPIRATION", &expiry);
    let fake = FakeCloud::start(vec![], Some(Reply::json(200, &answer))).await;
    let config = broker(
        ferry_server::BrokerKind::Aliyun,
        &fake.url(),
        "cn-hangzhou",
        "b",
    );
    // Callbacks through a cloud are asked for only when the API's public URL is given.
    let server = TestServer::start_with(|options| {
        options.broker = Some(config);
        options.api_public_url = Some("https://ferry.example.com".into());
    })
    .await;
    let client = server.user("alice", Role::User).await;
    let grant = client.grant().await;
    let spec = ferry_protocol::CallbackSpec::of(&grant).expect("an OSS grant carries a callback");

    // The store's key stands in for OSS's own: the signature is good, the claim is not checked.
    let pem_url = format!("{}/_ferry/callback_pub_key.pem", server.server.store_url());
    reqwest::get(&pem_url).await.unwrap().text().await.unwrap();
    let pem = std::fs::read_to_string(server.dir.path().join("callback.key")).unwrap();
    let key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    let body = format!(
        "bucket=b&object={}fake.iso&etag=ABC&size=999999999&mimeType=x&upload_id=u1&\
         name=fake.iso&device=&grant={}",
        grant.prefix, spec.vars["x:grant"]
    );
    let mut claimed = Captured {
        path: "/api/v1/callbacks/oss".into(),
        headers: vec![
            ("content-type".into(), spec.body_type.clone()),
            ("x-oss-pub-key-url".into(), STANDARD.encode(&pem_url)),
        ],
        body: body.into_bytes(),
    };
    let signature = oss_callback_signature(&key, &claimed);
    claimed.headers.push(("authorization".into(), signature));
    let record: UploadRecord = resend(&server.api, &claimed).await.json(200);
    assert_eq!(record.size, 999_999_999);
    assert_eq!(
        record.confirmed_by,
        ConfirmedBy::Client,
        "a cloud bucket's callback vouched for by the provider: {record:?}"
    );
}
