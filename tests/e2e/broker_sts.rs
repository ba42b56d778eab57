//! The `sts` broker against moto (PyPI `moto[server]`), an independent implementation of AWS STS
//! and S3 on `127.0.0.1`: ferry-server vends a grant through moto's `AssumeRole`, and the engine
//! uploads a multipart file to moto's S3 with those temporary credentials; boto3 reads it back.
//!
//! What this proves: the AssumeRole call (Query API form, SigV4 for `sts`) is one an AWS
//! implementation accepts, its XML answer becomes a grant the engine can use against an S3
//! that is not Ferry's, and a multipart upload with the session token works there. What it does
//! not prove: moto enforces neither session policies nor expiry (the embedded store's tests
//! cover those), and it does not check signatures.

use std::process::Stdio;
use std::time::Duration;

use ferry_engine::journal::FileState;
use ferry_protocol::{Addressing, Grant, Provider, Role};
use ferry_server::BrokerKind;
use ferry_tests::{bytes, engine, expected_etag, within};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::broker_cloud::{broker, python, server};

const MIB: usize = 1024 * 1024;

/// A moto server on a free loopback port, killed when dropped.
struct Moto {
    url: String,
    _child: tokio::process::Child,
}

impl Moto {
    /// Starts `python3 -m moto.server` on port 0 and reads the port it bound (within 60 s).
    async fn start() -> Self {
        let mut child = tokio::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs moto (cargo xtask test installs moto[server])");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (found, port) = tokio::sync::oneshot::channel();
        // Werkzeug logs every request to stderr: keep reading it so moto never blocks.
        tokio::spawn(async move {
            let mut found = Some(found);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.split("Running on ").nth(1)
                    && let Some(sender) = found.take()
                {
                    let _ = sender.send(url.trim().to_owned());
                }
            }
        });
        let url = within(60, "moto starting", port)
            .await
            .expect("moto printed the address it serves on");
        Self { url, _child: child }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sts_broker_vends_through_moto_and_the_engine_uploads_to_its_s3() {
    let moto = Moto::start().await;
    let bucket = "ferry-moto-uploads";
    python(
        "moto_s3.py",
        &json!({"op": "create_bucket", "endpoint": moto.url, "bucket": bucket}),
    )
    .await;

    let mut config = broker(BrokerKind::Sts, &moto.url, "us-east-1", bucket);
    config.role_arn = Some("arn:aws:iam::123456789012:role/ferry-uploads".into());
    config.store_endpoint = moto.url.clone();
    config.addressing = Addressing::Path;
    let server = server(config, Duration::from_secs(900)).await;

    // The grant as the API hands it out.
    let client = server.user("probe", Role::User).await;
    let grant: Grant = client.post("/api/v1/grants", &json!({})).await.json(201);
    assert_eq!(grant.provider, Provider::S3);
    assert_eq!(grant.endpoint, moto.url);
    assert!(grant.access_key_id.starts_with("ASIA"), "{grant:?}");
    assert!(!grant.security_token.is_empty());
    let lifetime = (grant.expires_at - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((880..=900).contains(&lifetime), "{lifetime}");
    let refused: serde_json::Value = client
        .post("/api/v1/grants", &json!({"provider": "oss"}))
        .await
        .json(400);
    assert!(
        refused["message"].as_str().unwrap().contains("sts"),
        "{refused}"
    );

    // The engine, through the same server, uploads a multipart file to moto's S3.
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(20 * MIB, 7);
    let file = dir.path().join("twenty.bin");
    std::fs::write(&file, &data).unwrap();
    let (engine, _events) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let summary = within(180, "the upload to moto", engine.run_until_idle())
        .await
        .unwrap();
    let row = engine.journal().file(ids[0]).unwrap().unwrap();
    assert_eq!(row.state, FileState::Confirmed, "{row:?} {summary:?}");
    let key = row.object_key.clone().expect("the object key");
    let alice: ferry_protocol::Session = server.sign_in("alice", &password).await.json(201);
    assert!(
        key.starts_with(&format!("uploads/{}/", alice.user.id)),
        "{key}"
    );

    let read = python(
        "moto_s3.py",
        &json!({"op": "read", "endpoint": moto.url, "bucket": bucket, "key": key,
                "path": file.to_str().unwrap()}),
    )
    .await;
    assert_eq!(read["size"], json!(data.len()));
    assert_eq!(
        read["same"],
        json!(true),
        "the bytes in moto are the file's"
    );
    assert_eq!(
        read["etag"],
        json!(expected_etag(&data, 16 * MIB, 8 * MIB)),
        "a three-part multipart upload"
    );
    // The app server cannot see into the cloud's bucket: the client's word is recorded, and
    // history says so.
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    assert_eq!(page.items[0].key, key);
    assert_eq!(
        page.items[0].confirmed_by,
        ferry_protocol::ConfirmedBy::Client
    );
    assert_eq!(page.items[0].size, data.len() as u64);
    ferry_tests::figures(
        "broker_sts moto",
        &format!(
            "20 MiB in 3 parts to moto's S3 with AssumeRole credentials; engine summary \
             confirmed={} failed={}",
            summary.confirmed, summary.failed
        ),
    );
}
