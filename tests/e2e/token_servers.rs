//! Ferry with app servers built the way the vendors' tutorials build them (`tests/tutorial/`,
//! Python's standard library only): they check the user with HTTP Basic, fetch temporary
//! credentials with their own account, and answer Alibaba's STS shape or Huawei Workspace's
//! authorize shape. Ferry knows them only through a connection profile; it signs in, uploads,
//! refreshes from them, and keeps the history on this computer. Their "STS" is the Ferry app
//! server, so the credentials are real ones the embedded store enforces.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ferry_engine::events::Event;
use ferry_engine::journal::FileState;
use ferry_engine::secret::Secret;
use ferry_engine::token_server::{StorageSite, TokenAuth, TokenMethod, TokenServer, TokenShape};
use ferry_protocol::{Addressing, Grant, Provider, Role, SignatureVersion};
use ferry_tests::{TestServer, bytes, engine, within};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MIB: usize = 1024 * 1024;

/// A running tutorial server; killed when dropped.
pub(crate) struct Tutorial {
    pub(crate) url: String,
    _child: tokio::process::Child,
}

/// Starts `tests/tutorial/token_server.py` with `config` (plus the STS and account fields).
pub(crate) async fn tutorial(server: &TestServer, config: serde_json::Value) -> (Tutorial, Grant) {
    let account = server.add_user("tutorial-app", Role::User);
    let own: Grant = server
        .login("tutorial-app", &account)
        .await
        .post("/api/v1/grants", &json!({}))
        .await
        .json(201);
    let mut config = config;
    config["sts"] = json!(server.api);
    config["account"] = json!(["tutorial-app", account]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tutorial/token_server.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (cargo xtask test installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{config}\n").as_bytes())
        .await
        .expect("configure the tutorial server");
    drop(stdin);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = within(30, "the tutorial server to start", lines.next_line())
        .await
        .expect("read its address")
        .expect("it printed its address");
    let url = first
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    (Tutorial { url, _child: child }, own)
}

fn profile(tutorial: &Tutorial, shape: TokenShape, storage: StorageSite) -> TokenServer {
    TokenServer {
        token_url: format!("{}/sts", tutorial.url),
        shape,
        auth: TokenAuth::Basic,
        method: TokenMethod::Get,
        storage,
    }
}

fn refreshes(events: &ferry_tests::Recorder) -> usize {
    events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::CredentialsRefreshed { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_server_from_alibabas_tutorial_signs_in_refreshes_and_uploads() {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(3)).await;
    let config = json!({"shape": "aliyun_sts", "provider": "oss", "users": {"alice": "s3cret"}});
    let (tutorial, own) = tutorial(&server, config).await;
    let storage = StorageSite {
        provider: Provider::Oss,
        endpoint: Some(own.endpoint.clone()),
        addressing: Some(Addressing::Domain),
        signature_version: SignatureVersion::V4,
        region: Some(own.region.clone()),
        bucket: Some(own.bucket.clone()),
        prefix: Some(format!("{}{{user}}/", own.prefix)),
    };
    let connection = profile(&tutorial, TokenShape::AliyunSts, storage);

    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("note.txt");
    std::fs::write(&small, b"from the tutorial").unwrap();
    let large = dir.path().join("large.bin");
    let data = bytes(30 * MIB, 901);
    std::fs::write(&large, &data).unwrap();
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", "s3cret", |c| {
        c.token_server = Some(connection.clone());
        c.transfer.bandwidth = Some(12 * MIB as u64);
    })
    .await;
    assert_eq!(engine.session().api().base(), connection.token_url);
    engine.enqueue(&[small, large]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    assert!(
        refreshes(&events) >= 2,
        "3-second credentials were fetched again from the tutorial server"
    );
    for (name, expected) in [
        ("note.txt", &b"from the tutorial"[..]),
        ("large.bin", &data),
    ] {
        let key = format!("{}alice/{name}", own.prefix);
        let stored = server.server.object_bytes(&own.bucket, &key).await.unwrap();
        assert!(stored.as_deref() == Some(expected), "{key} stored as sent");
    }
    let err = engine.history("").await.unwrap_err();
    assert_eq!(err.code(), "local_history_only", "{err}");

    let refused = engine
        .sign_in("alice", &Secret::new("wrong"), "test-device")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_credentials", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_server_answering_huaweis_workspace_shape_is_followed_to_its_directory() {
    let server = TestServer::start().await;
    let config = json!({"shape": "huawei_workspace", "provider": "obs",
                        "users": {"carol": "pw"}, "method": "POST"});
    let (tutorial, own) = tutorial(&server, config).await;
    let storage = StorageSite {
        provider: Provider::Obs,
        endpoint: None,
        addressing: Some(Addressing::Domain),
        signature_version: SignatureVersion::V4,
        region: Some(own.region.clone()),
        bucket: None,
        prefix: None,
    };
    let mut connection = profile(&tutorial, TokenShape::HuaweiWorkspace, storage);
    connection.method = TokenMethod::Post;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("setup.zip");
    let data = bytes(18 * MIB, 902);
    std::fs::write(&file, &data).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "carol", "pw", |c| {
        c.token_server = Some(connection.clone());
    })
    .await;
    let grant = engine.credentials().current().await.unwrap();
    assert_eq!(
        grant.prefix,
        format!("{}carol/", own.prefix),
        "the answer's directory"
    );
    assert_eq!(grant.bucket, own.bucket);
    engine.enqueue(&[file]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    let key = format!("{}carol/setup.zip", own.prefix);
    let stored = server.server.object_bytes(&own.bucket, &key).await.unwrap();
    assert!(stored.as_deref() == Some(data.as_slice()), "stored as sent");
}

/// A grant whose policy does not cover where Ferry would write is refused before the first
/// byte, with the prefixes the policy does allow, instead of an `AccessDenied` after a part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_grants_policy_is_refused_before_the_first_byte() {
    let server = TestServer::start().await;
    let account_prefix = "uploads/1/";
    let config = json!({"shape": "huawei_workspace", "provider": "obs",
                        "users": {"carol": "pw"},
                        "directory": format!("{account_prefix}inbox/"),
                        "policy_prefix": format!("{account_prefix}reviewed/")});
    let (tutorial, own) = tutorial(&server, config).await;
    assert_eq!(
        own.prefix, account_prefix,
        "the tutorial's account is the first user"
    );
    let storage = StorageSite {
        provider: Provider::Obs,
        endpoint: None,
        addressing: Some(Addressing::Domain),
        signature_version: SignatureVersion::V4,
        region: Some(own.region.clone()),
        bucket: None,
        prefix: None,
    };
    let connection = profile(&tutorial, TokenShape::HuaweiWorkspace, storage);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, bytes(6 * MIB, 903)).unwrap();
    let (engine, events) = engine(&server, &dir.path().join("data"), "carol", "pw", |c| {
        c.token_server = Some(connection.clone());
    })
    .await;
    let before = server.server.store_bytes_received();
    let ids = engine.enqueue(&[file]).await.unwrap();
    within(60, "the attempt", engine.run_until_idle())
        .await
        .unwrap();
    let row = engine.journal().file(ids[0]).unwrap().unwrap();
    assert_eq!(row.state, FileState::Failed);
    let failure = events
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::State {
                state: FileState::Failed,
                error: Some(error),
                ..
            } => Some(error),
            _ => None,
        })
        .expect("the failure is shown");
    assert_eq!(failure.code, "outside_grant", "{failure:?}");
    assert!(
        failure
            .message
            .contains(&format!("{}/{account_prefix}reviewed/", own.bucket)),
        "says where writing is allowed: {}",
        failure.message
    );
    assert_eq!(
        server.server.store_bytes_received(),
        before,
        "not one byte went to the store"
    );
}

/// The `ferry` command with a connection profile: `login` remembers it, later commands use it
/// without being told again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ferry_command_signs_in_with_a_profile_and_remembers_it() {
    let server = TestServer::start().await;
    let config = json!({"shape": "aliyun_sts", "provider": "oss", "users": {"dave": "pw"}});
    let (tutorial, own) = tutorial(&server, config).await;
    let dir = tempfile::tempdir().unwrap();
    let profile_path = dir.path().join("company.toml");
    std::fs::write(
        &profile_path,
        format!(
            "token_url = \"{}/sts\"\nshape = \"aliyun_sts\"\n\n[storage]\nprovider = \"oss\"\n\
             endpoint = \"{}\"\naddressing = \"domain\"\nregion = \"{}\"\nbucket = \"{}\"\n\
             prefix = \"{}{{user}}/\"\n",
            tutorial.url, own.endpoint, own.region, own.bucket, own.prefix
        ),
    )
    .unwrap();
    let file = dir.path().join("minutes.txt");
    std::fs::write(&file, b"minutes of the meeting").unwrap();
    let data_dir = dir.path().join("data");
    let ferry = |args: &[&std::ffi::OsStr]| {
        let mut command = std::process::Command::new(ferry_tests::ferry_bin());
        command
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_CONNECTION")
            .env("FERRY_DATA_DIR", &data_dir)
            .env("FERRY_MEMORY_KEYCHAIN", "true")
            .env("FERRY_USER", "dave")
            .env("FERRY_PASSWORD", "pw")
            .args(args)
            .stdin(Stdio::null());
        command
    };
    let run = |mut command: std::process::Command| async move {
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, text) = run(ferry(&[
        "--connection".as_ref(),
        profile_path.as_os_str(),
        "login".as_ref(),
        "dave".as_ref(),
    ]))
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains("/sts"),
        "signed in to the token server: {text}"
    );

    let (ok, text) = run(ferry(&["upload".as_ref(), file.as_os_str()])).await;
    assert!(ok, "the remembered profile is used: {text}");
    let key = format!("{}dave/minutes.txt", own.prefix);
    let stored = server.server.object_bytes(&own.bucket, &key).await.unwrap();
    assert_eq!(stored.as_deref(), Some(&b"minutes of the meeting"[..]));

    std::fs::write(&profile_path, "token_url = \"http://192.0.2.1/sts\"\nshape = \"aliyun_sts\"\n[storage]\nprovider = \"oss\"\n").unwrap();
    let (ok, text) = run(ferry(&[
        "--connection".as_ref(),
        profile_path.as_os_str(),
        "upload".as_ref(),
        file.as_os_str(),
    ]))
    .await;
    assert!(!ok, "plain http to another computer is refused");
    assert!(text.contains("192.0.2.1"), "{text}");
}

/// A token server that answers without end (here: 4 MiB of JSON whitespace) gets a clear
/// error once the answer passes 1 MiB; the app never holds the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_cut_off_with_a_clear_error() {
    let app = axum::Router::new().fallback(|| async {
        let mut body = vec![b' '; 4 * MIB];
        body.extend_from_slice(b"{}");
        ([("content-type", "application/json")], body)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TokenServer {
        token_url: url,
        shape: TokenShape::AliyunSts,
        auth: TokenAuth::Basic,
        method: TokenMethod::Get,
        storage: StorageSite {
            provider: Provider::Oss,
            endpoint: Some("http://127.0.0.1:1".into()),
            addressing: None,
            signature_version: SignatureVersion::V4,
            region: Some("cn-hangzhou".into()),
            bucket: Some("b".into()),
            prefix: Some("u/{user}/".into()),
        },
    };
    let client = ferry_engine::api::ApiClient::for_token_server(
        &Default::default(),
        server,
        Duration::from_secs(10),
    )
    .unwrap();
    let err = within(
        30,
        "signing in",
        client.sign_in("erin", &Secret::new("pw"), "test-device"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "protocol", "{err}");
    assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");
}
