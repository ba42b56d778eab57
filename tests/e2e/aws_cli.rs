//! The `aws` CLI as an independent S3 client of the embedded store, with a grant's credentials.

use std::path::Path;
use std::process::{Command, Output};

use ferry_protocol::{Grant, Role, UploadPage};
use ferry_tests::{TestServer, bytes, md5_hex, multipart_etag};

fn aws(grant: &Grant, home: &Path, token: &str, args: &[&str]) -> Output {
    let mut command = Command::new("aws");
    command
        .args(["--endpoint-url", &grant.endpoint, "--region", &grant.region])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_ACCESS_KEY_ID", &grant.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &grant.secret_access_key)
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    for (name, value) in std::env::vars() {
        if name.starts_with("PYENV") || name == "PYTHONPATH" {
            command.env(name, value);
        }
    }
    command.output().unwrap_or_else(|e| {
        panic!("the aws CLI must be installed (cargo xtask test installs it): {e}")
    })
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_uploads_multipart_and_is_refused_outside_the_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let grant = alice.grant().await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("fifty.bin");
    std::fs::write(&file, bytes(50 * 1024 * 1024, 50)).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let target = format!("s3://{}/{}cli/fifty.bin", grant.bucket, grant.prefix);

    let g = grant.clone();
    let dir = home.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        aws(
            &g,
            &dir,
            &g.security_token,
            &["s3", "cp", "--only-show-errors", &file, &target],
        )
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "aws s3 cp failed: {}",
        text(&output)
    );

    let g = grant.clone();
    let dir = home.path().to_owned();
    let key = format!("{}cli/fifty.bin", grant.prefix);
    let head = tokio::task::spawn_blocking(move || {
        aws(
            &g,
            &dir,
            &g.security_token,
            &["s3api", "head-object", "--bucket", &g.bucket, "--key", &key],
        )
    })
    .await
    .unwrap();
    let head_text = text(&head);
    assert!(head.status.success(), "{head_text}");
    assert!(
        head_text.contains("\"ContentLength\": 52428800"),
        "{head_text}"
    );
    // The CLI sends 8 MiB parts: 7 of them.
    assert!(
        head_text.contains("-7\\\""),
        "multipart ETag expected: {head_text}"
    );

    let page: UploadPage = alice.get("/api/v1/uploads").await.json(200);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].size, 52_428_800);

    let small = home.path().join("small.txt");
    std::fs::write(&small, "hi").unwrap();
    let small = small.to_str().unwrap().to_owned();
    for (token, target, expected) in [
        (
            grant.security_token.clone(),
            format!("s3://{}/uploads/999/x", grant.bucket),
            "AccessDenied",
        ),
        (
            "wrong-token".to_owned(),
            format!("s3://{}/{}x", grant.bucket, grant.prefix),
            "InvalidToken",
        ),
    ] {
        let g = grant.clone();
        let dir = home.path().to_owned();
        let small = small.clone();
        let to = target.clone();
        let output = tokio::task::spawn_blocking(move || {
            aws(
                &g,
                &dir,
                &token,
                &["s3", "cp", "--only-show-errors", &small, &to],
            )
        })
        .await
        .unwrap();
        assert!(!output.status.success(), "should be refused: {target}");
        assert!(
            text(&output).contains(expected),
            "{expected}: {}",
            text(&output)
        );
    }
}

/// Runs `aws s3api …` with the grant's own token off the async threads; its JSON answer.
async fn s3api(grant: &Grant, home: &Path, args: &[&str]) -> serde_json::Value {
    let grant = grant.clone();
    let home = home.to_owned();
    let args: Vec<String> = std::iter::once("s3api".to_owned())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aws(&grant, &home, &grant.security_token, &args)
    })
    .await
    .unwrap();
    assert!(output.status.success(), "aws failed: {}", text(&output));
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_lists_parts_and_uploads_and_the_object_is_byte_identical() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let grant = alice.grant().await;
    let home = tempfile::tempdir().unwrap();
    let key = format!("{}cli/parts.bin", grant.prefix);
    let bucket = grant.bucket.clone();
    let parts = [bytes(5 * 1024 * 1024, 90), bytes(777, 91)];

    let created = s3api(
        &grant,
        home.path(),
        &[
            "create-multipart-upload",
            "--bucket",
            &bucket,
            "--key",
            &key,
        ],
    )
    .await;
    let upload_id = created["UploadId"].as_str().expect("UploadId").to_owned();
    for (i, part) in parts.iter().enumerate() {
        let file = home.path().join(format!("part{}", i + 1));
        std::fs::write(&file, part).unwrap();
        let number = (i + 1).to_string();
        s3api(
            &grant,
            home.path(),
            &[
                "upload-part",
                "--bucket",
                &bucket,
                "--key",
                &key,
                "--upload-id",
                &upload_id,
                "--part-number",
                &number,
                "--body",
                file.to_str().unwrap(),
            ],
        )
        .await;
    }

    let listed = s3api(
        &grant,
        home.path(),
        &[
            "list-parts",
            "--bucket",
            &bucket,
            "--key",
            &key,
            "--upload-id",
            &upload_id,
        ],
    )
    .await;
    let seen: Vec<(u64, String, u64)> = listed["Parts"]
        .as_array()
        .expect("Parts")
        .iter()
        .map(|p| {
            (
                p["PartNumber"].as_u64().unwrap(),
                p["ETag"].as_str().unwrap().to_owned(),
                p["Size"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(u64, String, u64)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64 + 1, format!("\"{}\"", md5_hex(p)), p.len() as u64))
        .collect();
    assert_eq!(seen, expected, "{listed}");

    let uploads = s3api(
        &grant,
        home.path(),
        &[
            "list-multipart-uploads",
            "--bucket",
            &bucket,
            "--prefix",
            &grant.prefix,
        ],
    )
    .await;
    let open: Vec<(&str, &str)> = uploads["Uploads"]
        .as_array()
        .expect("Uploads")
        .iter()
        .map(|u| (u["Key"].as_str().unwrap(), u["UploadId"].as_str().unwrap()))
        .collect();
    assert_eq!(open, [(key.as_str(), upload_id.as_str())], "{uploads}");

    let manifest = home.path().join("parts.json");
    let listed_parts: Vec<serde_json::Value> = expected
        .iter()
        .map(|(n, etag, _)| serde_json::json!({"PartNumber": n, "ETag": etag}))
        .collect();
    std::fs::write(
        &manifest,
        serde_json::json!({ "Parts": listed_parts }).to_string(),
    )
    .unwrap();
    let manifest = format!("file://{}", manifest.display());
    let done = s3api(
        &grant,
        home.path(),
        &[
            "complete-multipart-upload",
            "--bucket",
            &bucket,
            "--key",
            &key,
            "--upload-id",
            &upload_id,
            "--multipart-upload",
            &manifest,
        ],
    )
    .await;
    let etag = done["ETag"]
        .as_str()
        .expect("ETag")
        .trim_matches('"')
        .to_owned();
    assert_eq!(etag, multipart_etag(&[&parts[0], &parts[1]]));
    let stored = server.server.object_bytes(&bucket, &key).await.unwrap();
    assert_eq!(
        stored,
        Some(parts.concat()),
        "the object is the parts, byte for byte"
    );

    let after = s3api(
        &grant,
        home.path(),
        &[
            "list-multipart-uploads",
            "--bucket",
            &bucket,
            "--prefix",
            &grant.prefix,
        ],
    )
    .await;
    assert!(
        after
            .get("Uploads")
            .is_none_or(|u| u.as_array().is_some_and(Vec::is_empty)),
        "nothing is left open: {after}"
    );
}
