//! The `aws` CLI as an independent S3 client of the embedded store, with a grant's credentials.

use std::path::Path;
use std::process::{Command, Output};

use ferry_protocol::{Grant, Role, UploadPage};
use ferry_tests::{TestServer, bytes};

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
