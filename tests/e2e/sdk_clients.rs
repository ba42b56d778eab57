//! The vendors' own SDKs as clients of the embedded store, each with a Ferry grant of its
//! dialect: Alibaba's `oss2` (V4 and V1 signatures; the grant's endpoint as given, and the
//! bucket's own domain), Huawei's `esdk-obs-python` and `boto3`. Each uploads a multipart file
//! inside the grant's prefix (read back and compared byte for byte), and is refused outside
//! it, with a wrong token and after expiry. The scripts are in `tests/sdk/`.

use std::path::Path;
use std::time::Duration;

use ferry_protocol::{Grant, Role, UploadPage};
use ferry_tests::{ApiClient, TestServer, bytes, figures, multipart_etag};
use serde_json::{Value, json};

/// Every SDK run gives up after this long.
const SDK_TIMEOUT: Duration = Duration::from_secs(120);
/// The SDKs upload in parts of this size (the store's minimum).
const PART: usize = 5 * 1024 * 1024;

/// A grant of `provider` (with `extra` fields in the request).
async fn grant(client: &ApiClient, provider: &str, extra: Value) -> Grant {
    let mut body = json!({ "provider": provider });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    client.post("/api/v1/grants", &body).await.json(201)
}

/// Runs `tests/sdk/<script>` with `case` on stdin; its one-line JSON answer.
pub(crate) async fn run_sdk(script: &str, case: &Value) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        // Tests write only under temp dirs: no __pycache__ beside the scripts.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in std::env::vars() {
        if name.starts_with("PYENV") || name == "PYTHONPATH" {
            command.env(name, value);
        }
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("python3 must be installed (cargo xtask test does): {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, case.to_string().as_bytes())
        .await
        .expect("write the case");
    drop(stdin);
    let output = tokio::time::timeout(SDK_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SDK_TIMEOUT:?}"))
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}); install the SDKs with cargo xtask test \
         (pip: oss2, esdk-obs-python, boto3)\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// An ETag as an SDK reports it, compared without quotes and case.
fn plain(etag: &Value) -> String {
    etag.as_str()
        .unwrap_or_default()
        .trim_matches('"')
        .to_ascii_lowercase()
}

/// A file of `len` bytes in `dir`; its bytes and its path.
fn source(dir: &Path, len: usize, seed: u64) -> (Vec<u8>, String) {
    let data = bytes(len, seed);
    let path = dir.join(format!("source-{seed}.bin"));
    std::fs::write(&path, &data).expect("write the source file");
    (data, path.to_str().expect("UTF-8 temp path").to_owned())
}

/// Checks a successful multipart upload: the answer, the bytes stored, one history row.
async fn check_uploaded(
    server: &TestServer,
    owner: &ApiClient,
    grant: &Grant,
    key: &str,
    data: &[u8],
    answer: &Value,
) {
    assert_eq!(answer["ok"], true, "{answer}");
    let parts: Vec<&[u8]> = data.chunks(PART).collect();
    let expected = multipart_etag(&parts);
    assert_eq!(plain(&answer["etag"]), expected, "{answer}");
    assert_eq!(plain(&answer["head_etag"]), expected, "{answer}");
    assert_eq!(answer["head_size"], data.len(), "{answer}");
    assert_eq!(answer["parts"], parts.len(), "{answer}");
    let listed = answer["listed_parts"].as_array().expect("listed parts");
    assert_eq!(listed.len(), parts.len(), "{answer}");
    for (i, (part, listed)) in parts.iter().zip(listed).enumerate() {
        assert_eq!(listed[0], i + 1, "{answer}");
        assert_eq!(plain(&listed[1]), ferry_tests::md5_hex(part), "{answer}");
        assert_eq!(listed[2], part.len(), "{answer}");
    }
    let stored = server
        .server
        .object_bytes(&grant.bucket, key)
        .await
        .expect("read the object");
    assert!(
        stored.as_deref() == Some(data),
        "the stored object differs from the file"
    );
    let page: UploadPage = owner.get("/api/v1/uploads?limit=500").await.json(200);
    let rows = page.items.iter().filter(|row| row.key == key).count();
    assert_eq!(rows, 1, "one history row per upload: {page:?}");
}

/// The refusals every SDK must meet, each leaving nothing stored: a key outside the prefix,
/// a wrong token, and a grant past its expiry.
async fn check_refusals(
    server: &TestServer,
    owner: &ApiClient,
    provider: &str,
    script: &str,
    case: Value,
    expected: [(&str, u16); 3],
) {
    let grant_of =
        |case: &Value| -> Grant { serde_json::from_value(case["grant"].clone()).unwrap() };
    let mut outside = case.clone();
    outside["key"] = json!("uploads/999/outside.bin");
    let mut wrong_token = case.clone();
    wrong_token["token"] = json!("not-the-grant-token");
    // The same signature version as the case's grant (OSS grants take only theirs).
    let version = grant_of(&case).signature_version;
    let short: Grant = grant(
        owner,
        provider,
        json!({ "ttl_seconds": 1, "signature_version": version }),
    )
    .await;
    let mut expired = case.clone();
    expired["token"] = json!(short.security_token);
    expired["grant"] = serde_json::to_value(&short).unwrap();
    let wait = (short.expires_at - time::OffsetDateTime::now_utc()).whole_milliseconds();
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(wait).unwrap_or(0) + 1100,
    ))
    .await;
    for ((what, case), (code, status)) in [
        ("outside the prefix", outside),
        ("with a wrong token", wrong_token),
        ("after expiry", expired),
    ]
    .into_iter()
    .zip(expected)
    {
        let answer = run_sdk(script, &case).await;
        assert_eq!(answer["ok"], false, "{script} {what}: {answer}");
        assert_eq!(answer["code"], code, "{script} {what}: {answer}");
        assert_eq!(answer["status"], status, "{script} {what}: {answer}");
        let key = case["key"].as_str().unwrap();
        let stored = server
            .server
            .object_bytes(&grant_of(&case).bucket, key)
            .await
            .unwrap();
        assert!(stored.is_none(), "{script} {what} stored {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss2_uploads_multipart_with_v4_and_v1_and_is_refused_outside_the_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = source(dir.path(), 2 * PART + 12_345, 81);
    let started = std::time::Instant::now();
    for (auth, addressing) in [
        ("v4", "endpoint"),
        ("v4", "cname"),
        ("v1", "endpoint"),
        ("v1", "cname"),
    ] {
        let grant = grant(&alice, "oss", json!({ "signature_version": auth })).await;
        assert_eq!(
            serde_json::to_value(grant.addressing).unwrap(),
            "domain",
            "{grant:?}"
        );
        let key = format!("{}oss2/{auth}-{addressing}/日本 a+b%c.bin", grant.prefix);
        let case = json!({
            "grant": grant, "token": grant.security_token, "auth": auth,
            "addressing": addressing, "action": "multipart", "key": key, "file": file,
            "part_size": PART,
        });
        let answer = run_sdk("oss_upload.py", &case).await;
        check_uploaded(&server, &alice, &grant, &key, &data, &answer).await;
        // OSS writes ETags in upper case; oss2 checked every part's CRC-64 and the object's
        // (combined from the parts') against the store's; crcmod agrees on the whole file.
        let etag = answer["etag"].as_str().unwrap().trim_matches('"');
        assert_eq!(etag, etag.to_ascii_uppercase(), "{answer}");
        assert!(answer["crc64"].is_u64(), "{answer}");
        assert_eq!(answer["crc64"], answer["client_crc64"], "{answer}");
        assert_eq!(answer["head_crc64"], answer["client_crc64"], "{answer}");
        assert_eq!(answer["listed_uploads"].as_array().map(Vec::len), Some(1));
        let presigned = json!({
            "grant": grant, "token": grant.security_token, "auth": auth,
            "addressing": addressing, "action": "presigned_put",
            "key": format!("{key}.presigned"), "file": file,
        });
        let answer = run_sdk("oss_upload.py", &presigned).await;
        assert_eq!(
            answer["ok"], true,
            "presigned {auth} {addressing}: {answer}"
        );
        assert_eq!(plain(&answer["etag"]), ferry_tests::md5_hex(&data));
    }
    figures(
        "oss2_uploads_multipart_with_v4_and_v1_and_is_refused_outside_the_rules",
        &format!(
            "4 multipart uploads of {} bytes and 4 presigned PUTs by oss2 in {:.1} s",
            data.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    for auth in ["v4", "v1"] {
        let grant = grant(&alice, "oss", json!({ "signature_version": auth })).await;
        let case = json!({
            "grant": grant, "token": grant.security_token, "auth": auth,
            "addressing": "cname", "action": "multipart",
            "key": format!("{}oss2/refused-{auth}.bin", grant.prefix), "file": file,
            "part_size": PART,
        });
        let expected = [
            ("AccessDenied", 403),
            ("InvalidAccessKeyId", 403),
            ("SecurityTokenExpired", 403),
        ];
        check_refusals(&server, &alice, "oss", "oss_upload.py", case, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esdk_obs_uploads_multipart_with_its_token_and_is_refused_outside_the_rules() {
    let server = TestServer::start().await;
    let bob = server.user("bob", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = source(dir.path(), 2 * PART + 777, 82);
    // virtual_hosted: the OBS signature; cname (the grant's endpoint, is_cname=True): the SDK
    // signs the S3 V2 flavor OBS accepts, with the domain in place of the bucket.
    for addressing in ["virtual_hosted", "cname"] {
        let grant = grant(&bob, "obs", json!({})).await;
        let key = format!("{}obs/{addressing}/日本 a+b%c.bin", grant.prefix);
        let case = json!({
            "grant": grant, "token": grant.security_token, "addressing": addressing,
            "action": "multipart", "key": key, "file": file, "part_size": PART,
        });
        let answer = run_sdk("obs_upload.py", &case).await;
        check_uploaded(&server, &bob, &grant, &key, &data, &answer).await;
        let expected = [
            ("AccessDenied", 403),
            ("InvalidToken", 400),
            ("ExpiredToken", 400),
        ];
        let mut refused = case.clone();
        refused["key"] = json!(format!("{}obs/{addressing}/refused.bin", grant.prefix));
        check_refusals(&server, &bob, "obs", "obs_upload.py", refused, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_uploads_multipart_and_is_refused_outside_the_rules() {
    let server = TestServer::start().await;
    let carol = server.user("carol", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = source(dir.path(), 2 * PART + 4321, 83);
    let grant = grant(&carol, "s3", json!({})).await;
    let key = format!("{}boto3/日本 a+b%c.bin", grant.prefix);
    let case = json!({
        "grant": grant, "token": grant.security_token, "action": "multipart", "key": key,
        "file": file, "part_size": PART,
    });
    let answer = run_sdk("s3_upload.py", &case).await;
    check_uploaded(&server, &carol, &grant, &key, &data, &answer).await;
    let expected = [
        ("AccessDenied", 403),
        ("InvalidToken", 400),
        ("ExpiredToken", 400),
    ];
    let mut refused = case.clone();
    refused["key"] = json!(format!("{}boto3/refused.bin", grant.prefix));
    check_refusals(&server, &carol, "s3", "s3_upload.py", refused, expected).await;
}

/// What a refused step of `no_overwrite` answered: `(status, code)`, or `(200, "")` if allowed.
fn step(answer: &Value, name: &str) -> (u64, String) {
    let step = &answer[name];
    match step["ok"].as_bool() {
        Some(true) => (200, String::new()),
        _ => (
            step["status"].as_u64().unwrap_or(0),
            step["code"].as_str().unwrap_or_default().to_owned(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_forbid_overwriting_leave_an_existing_object_alone_for_boto3_and_oss2() {
    let server = TestServer::start().await;
    let dave = server.user("dave", Role::User).await;
    // boto3: `If-None-Match: *` on PutObject and CompleteMultipartUpload, as S3 answers it.
    let grant_s3 = grant(&dave, "s3", json!({})).await;
    let key = format!("{}boto3/kept.txt", grant_s3.prefix);
    let case = json!({
        "grant": grant_s3, "token": grant_s3.security_token, "action": "no_overwrite",
        "key": key,
    });
    let answer = run_sdk("s3_upload.py", &case).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let precondition = (412, "PreconditionFailed".to_owned());
    assert_eq!(step(&answer, "put"), precondition, "{answer}");
    assert_eq!(step(&answer, "complete"), precondition, "{answer}");
    assert_eq!(step(&answer, "fresh"), (200, String::new()), "{answer}");
    let stored = server
        .server
        .object_bytes(&grant_s3.bucket, &key)
        .await
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(&b"first"[..]),
        "boto3 overwrote {key}"
    );
    // oss2: `x-oss-forbid-overwrite: true` on PutObject, InitiateMultipartUpload and
    // CompleteMultipartUpload, as OSS answers it; `false` overwrites; another value is refused.
    for auth in ["v4", "v1"] {
        let grant_oss = grant(&dave, "oss", json!({ "signature_version": auth })).await;
        let key = format!("{}oss2/kept-{auth}.txt", grant_oss.prefix);
        let case = json!({
            "grant": grant_oss, "token": grant_oss.security_token, "auth": auth,
            "addressing": "endpoint", "action": "no_overwrite", "key": key,
        });
        let answer = run_sdk("oss_upload.py", &case).await;
        assert_eq!(answer["ok"], true, "{answer}");
        let exists = (409, "FileAlreadyExists".to_owned());
        for refused in ["put", "initiate", "complete"] {
            assert_eq!(step(&answer, refused), exists, "{refused}: {answer}");
        }
        assert_eq!(step(&answer, "fresh"), (200, String::new()), "{answer}");
        assert_eq!(step(&answer, "allowed"), (200, String::new()), "{answer}");
        assert_eq!(step(&answer, "bad").0, 400, "{answer}");
        let stored = server
            .server
            .object_bytes(&grant_oss.bucket, &key)
            .await
            .unwrap();
        assert_eq!(stored.as_deref(), Some(&b"fourth"[..]), "{auth}: {answer}");
    }
}
