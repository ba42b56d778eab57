//! The `verify-callback` example, run as CI runs it: OSS's published callback example (its
//! documentation's signed request and its public key) is valid, the same request changed is not,
//! and bad cases get a reason.

use std::io::Write;
use std::process::{Command, Stdio};

/// `target/<profile>/examples/verify-callback`, built with this test (`cargo test` builds the
/// package's examples).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples").join("verify-callback")
}

fn verify(case: &serde_json::Value) -> serde_json::Value {
    let mut child = Command::new(example())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the verify-callback example");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// OSS's callback public key (`callback_pub_key_v1.pem`), as published.
const OSS_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKs/JBGzwUB2aVht4crBx3oIPBLNsjGs
C0fTXv+nvlmklvkcolvpvXLTjaxUHR3W9LXxQ2EHXAJfCB+6H2YF1k8CAwEAAQ==
-----END PUBLIC KEY-----";

fn published() -> serde_json::Value {
    serde_json::json!({
        "provider": "oss",
        "method": "POST",
        "path": "/index.php",
        "query": "id=1&index=2",
        "headers": [
            ["Host", "121.43.113.8"],
            ["Content-Type", "application/x-www-form-urlencoded"],
            ["authorization", "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="],
            ["x-oss-pub-key-url", "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="]
        ],
        "body": "bucket=yonghu-test",
        "public_key_pem": OSS_KEY
    })
}

#[test]
fn verify_callback_accepts_the_published_oss_example_and_refuses_changes() {
    assert_eq!(verify(&published()), serde_json::json!({"valid": true}));
    let mut changed = published();
    changed["body"] = "bucket=yonghu-test2".into();
    let verdict = verify(&changed);
    assert_eq!(verdict["valid"], false);
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{verdict}"
    );
    let mut other_query = published();
    other_query["query"] = "id=2&index=2".into();
    assert_eq!(verify(&other_query)["valid"], false);
    let mut no_key = published();
    no_key.as_object_mut().unwrap().remove("public_key_pem");
    assert!(
        verify(&no_key)["reason"]
            .as_str()
            .unwrap()
            .contains("public_key_pem")
    );
    assert_eq!(verify(&serde_json::json!({"nonsense": 1}))["valid"], false);
}
