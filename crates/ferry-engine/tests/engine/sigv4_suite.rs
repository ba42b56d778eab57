//! The AWS SigV4 test suite (`tests/data/aws-sigv4-testsuite-2015.json`, from AWS's published
//! suite) through the same JSON case interface the `sign` example exposes.

use std::path::PathBuf;

use ferry_engine::dialect::case::sign_json;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The suite kept in the repository (another copy may be given with `FERRY_SIGV4_SUITE`).
fn suite_path() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRY_SIGV4_SUITE") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/aws-sigv4-testsuite-2015.json")
}

/// Turns a `.req` file into a signing case: request line, headers (folded lines kept as
/// continuation lines), blank line, body.
fn case_from_req(req: &str, constants: &Value) -> Value {
    let (head, body) = req.split_once("\n\n").unwrap_or((req, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let words: Vec<&str> = request_line.split(' ').collect();
    let method = words[0];
    let target = words[1..words.len() - 1].join(" ");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim().to_owned())
        .expect("Host header");
    json!({
        "dialect": "s3",
        "method": method,
        "url": format!("https://{host}{target}"),
        "headers": headers,
        "payload_sha256": hex::encode(Sha256::digest(body.as_bytes())),
        "region": constants["region"],
        "service": constants["service"],
        "time": constants["x_amz_date"],
        "credentials": {
            "access_key_id": constants["access_key_id"],
            "secret_access_key": constants["secret_access_key"],
            "security_token": null
        }
    })
}

#[test]
fn aws_sigv4_suite_passes_except_known_defects() {
    let suite: Value =
        serde_json::from_str(&std::fs::read_to_string(suite_path()).expect("read suite"))
            .expect("suite is JSON");
    let constants = &suite["constants"];
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, case) in suite["cases"].as_object().expect("cases") {
        if case.get("known_defect").is_some() {
            continue;
        }
        let input = case_from_req(case["req"].as_str().expect("req"), constants);
        let out = match sign_json(&input.to_string()) {
            Ok(out) => out,
            Err(err) => {
                failures.push(format!("{name}: {err}"));
                continue;
            }
        };
        if out.canonical_request.as_deref() != case["creq"].as_str() {
            failures.push(format!(
                "{name}: canonical request\n{:?}",
                out.canonical_request
            ));
        } else if Some(out.string_to_sign.as_str()) != case["sts"].as_str() {
            failures.push(format!("{name}: string to sign"));
        } else if out.authorization.as_deref() != case["authz"].as_str() {
            failures.push(format!("{name}: authorization {:?}", out.authorization));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 29, "only {checked} cases ran");
}

#[test]
fn malformed_cases_are_errors() {
    for bad in [
        "not json",
        r#"{"dialect":"s3"}"#,
        r#"{"dialect":"gcs","method":"GET","url":"http://h/","time":"20150830T123600Z","credentials":{"access_key_id":"a","secret_access_key":"b"}}"#,
        r#"{"dialect":"s3","method":"GET","url":"http://h/","region":"r","time":"yesterday","credentials":{"access_key_id":"a","secret_access_key":"b"}}"#,
    ] {
        assert!(sign_json(bad).is_err(), "{bad}");
    }
}
