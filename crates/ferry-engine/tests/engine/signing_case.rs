//! The JSON signing case (`docs/signing.md`) for `oss` and `obs`: the fields that are not only
//! passed through (signature version, CNAME mode, payload hash) and malformed cases.

use ferry_engine::dialect::case::{CaseError, sign_json};
use serde_json::{Value, json};

fn case(fields: Value) -> String {
    let mut case = json!({
        "method": "PUT",
        "url": "https://files.example.com/dir/a%20b.txt",
        "region": "cn-hangzhou",
        "time": "20240315T083045Z",
        "credentials": {"access_key_id": "ak", "secret_access_key": "sk", "security_token": null},
        "key": "dir/a b.txt"
    });
    for (name, value) in fields.as_object().expect("an object") {
        case[name] = value.clone();
    }
    case.to_string()
}

#[test]
fn obs_without_a_bucket_signs_the_domain_as_cname_mode() {
    let out = sign_json(&case(json!({"dialect": "obs"}))).unwrap();
    assert!(
        out.string_to_sign
            .ends_with("\n/files.example.com/dir/a%20b.txt"),
        "{}",
        out.string_to_sign
    );
    assert!(out.authorization.unwrap().starts_with("OBS ak:"));
    let v2 = sign_json(&case(json!({"dialect": "obs", "signature_version": "v2"}))).unwrap();
    assert!(v2.authorization.unwrap().starts_with("AWS ak:"));
}

#[test]
fn oss_signs_the_bucket_even_through_its_own_domain() {
    let out = sign_json(&case(
        json!({"dialect": "oss", "bucket": "b", "signature_version": "v1"}),
    ));
    assert!(out.unwrap().string_to_sign.ends_with("\n/b/dir/a b.txt"));
    let err = sign_json(&case(json!({"dialect": "oss"}))).unwrap_err();
    assert!(err.to_string().contains("bucket"), "{err}");
}

#[test]
fn oss_v4_sends_the_payload_hash_it_signs() {
    let hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let out = sign_json(&case(
        json!({"dialect": "oss", "bucket": "b", "payload_sha256": hash}),
    ))
    .unwrap();
    assert!(
        out.canonical_request
            .unwrap()
            .ends_with(&format!("\n{hash}"))
    );
    assert!(
        out.headers
            .iter()
            .any(|(n, v)| n == "x-oss-content-sha256" && v == hash)
    );
}

#[test]
fn malformed_cases_are_refused_with_a_reason() {
    let err = sign_json("{\"dialect\": \"oss\"").unwrap_err();
    assert!(matches!(err, CaseError::Json(_)), "{err}");
    let err = sign_json(&case(
        json!({"dialect": "oss", "bucket": "b", "signature_version": "v3"}),
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("signature_version \"v3\""),
        "{err}"
    );
    let err = sign_json(&case(json!({"dialect": "gcs"}))).unwrap_err();
    assert!(err.to_string().contains("oss, obs"), "{err}");
    let err = sign_json(&case(json!({"dialect": "obs", "presign_expires": 0}))).unwrap_err();
    assert!(err.to_string().contains("expire"), "{err}");
    assert!(
        !err.to_string().contains("sk"),
        "no secret in errors: {err}"
    );
}
