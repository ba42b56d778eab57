//! The vendors' own SDKs as oracles: `tests/oracles/generate.js` has ali-oss (OSS V4 and V1),
//! esdk-obs-nodejs (OBS) and @smithy/signature-v4 (S3) sign generated requests offline at fixed
//! dates, and every case must come out of the engine's signing case (`dialect::case`, what the
//! `sign` example runs) byte for byte: signature, canonical request and string to sign where the
//! SDK exposes them, `Authorization`, presigned URL and the headers sent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_engine::dialect::case::{CaseOutput, sign_json};
use serde_json::Value;

/// Cases each dialect must have at least.
const MIN_CASES: usize = 30;

fn oracles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracles")
}

/// Runs the generator (bounded to two minutes) and returns its cases.
fn generate(dir: &Path) -> Vec<Value> {
    assert!(
        dir.join("node_modules").is_dir(),
        "{}/node_modules is missing: run `npm ci` in tests/oracles (`cargo xtask test` does it)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("generate.js")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "starting node (Node.js is needed for the SDK oracles; `cargo xtask test` installs it)",
        );
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("tests/oracles/generate.js did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(status.success(), "generate.js failed ({status}): {stderr}");
    let out = reader
        .join()
        .expect("reader")
        .expect("reading generate.js output");
    serde_json::from_str::<Vec<Value>>(&out).expect("generate.js prints a JSON array")
}

/// `s3`, `oss v4`, `oss v1`, `obs obs`, `obs v2`.
fn label(case: &Value) -> String {
    let dialect = case["dialect"].as_str().unwrap_or("?");
    match case["signature_version"].as_str() {
        Some(version) => format!("{dialect} {version}"),
        None => dialect.to_owned(),
    }
}

/// Headers as a multiset of (lower-cased name, value): the SDKs keep them in objects.
fn header_set(headers: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut set: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    set.sort();
    set
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    serde_json::from_value(value.clone()).expect("[[name, value], …]")
}

fn decoded_query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q);
    let mut pairs = ferry_sign::query_pairs(query);
    pairs.sort();
    pairs
}

/// Every difference between what the engine produced and what the SDK produced.
fn differences(out: &CaseOutput, expected: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, ours: Option<&str>| {
        let theirs = expected[what].as_str();
        if theirs.is_some() && ours != theirs {
            diffs.push(format!(
                "{what}:\n    sdk:    {theirs:?}\n    engine: {ours:?}"
            ));
        }
    };
    check("signature", Some(&out.signature));
    check("string_to_sign", Some(&out.string_to_sign));
    check("canonical_request", out.canonical_request.as_deref());
    check("authorization", out.authorization.as_deref());
    check("url", out.url.as_deref());
    if let Some(query) = expected.get("url_query") {
        // The AWS SDK has no URL writer of its own in @smithy/signature-v4: compare the query.
        let mut theirs = pairs(query);
        theirs.sort();
        let ours = out.url.as_deref().map(decoded_query);
        if ours.as_ref() != Some(&theirs) {
            diffs.push(format!(
                "url query:\n    sdk:    {theirs:?}\n    engine: {ours:?}"
            ));
        }
    }
    if let Some(headers) = expected.get("headers") {
        let theirs = header_set(pairs(headers));
        let ours = header_set(out.headers.clone());
        if ours != theirs {
            diffs.push(format!(
                "headers:\n    sdk:    {theirs:?}\n    engine: {ours:?}"
            ));
        }
    }
    diffs
}

fn sdk_version(dir: &Path, package: &str) -> String {
    let path = dir.join("node_modules").join(package).join("package.json");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no version in {}", path.display()))
}

#[test]
fn vendor_sdks_and_the_engine_sign_alike() {
    let dir = oracles_dir();
    let cases = generate(&dir);
    let mut matched: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut upload_path: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for entry in &cases {
        let case = &entry["case"];
        let label = label(case);
        let counts = matched.entry(label.clone()).or_default();
        counts.1 += 1;
        let diffs = match sign_json(&case.to_string()) {
            Ok(out) => {
                *upload_path.entry(label).or_default() += usize::from(out.upload_path);
                differences(&out, &entry["expected"])
            }
            Err(err) => vec![format!("engine refused the case: {err}")],
        };
        if diffs.is_empty() {
            counts.0 += 1;
        } else {
            failures.push(format!("{}\n  {}", entry["name"], diffs.join("\n  ")));
        }
    }
    let summary = matched
        .iter()
        .map(|(label, (ok, all))| format!("{label} {ok}/{all}"))
        .collect::<Vec<_>>()
        .join(", ");
    let through_uploads = upload_path
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "figures vendor_sdks_and_the_engine_sign_alike: {summary}; also through the upload \
         path: {through_uploads} \
         (ali-oss {}, esdk-obs-nodejs {}, @smithy/signature-v4 {})",
        sdk_version(&dir, "ali-oss"),
        sdk_version(&dir, "esdk-obs-nodejs"),
        sdk_version(&dir, "@smithy/signature-v4"),
    );
    assert!(
        failures.is_empty(),
        "{} of {} oracle cases differ ({summary}); the first ones:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for dialect in ["s3", "oss v4", "oss v1", "obs obs"] {
        let count: usize = matched
            .iter()
            .filter(|(label, _)| label.starts_with(dialect))
            .map(|(_, (ok, _))| ok)
            .sum();
        assert!(
            count >= MIN_CASES,
            "only {count} {dialect} cases ({summary})"
        );
        let uploaded: usize = upload_path
            .iter()
            .filter(|(label, _)| label.starts_with(dialect))
            .map(|(_, n)| n)
            .sum();
        assert!(
            uploaded >= 5,
            "only {uploaded} {dialect} cases went through the upload path ({through_uploads})"
        );
    }
}
