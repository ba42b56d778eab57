//! `ferry --json`: every event as a line of JSON on stdout, each stamped with when it
//! happened, and the closing summary as JSON lines — what scripts (and the bench's
//! watched-folder latency) read.

use ferry_protocol::Role;
use ferry_tests::{TestServer, bytes, ferry_as, succeeds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_give_each_files_states_in_order_with_times_and_a_result() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.txt"), dir.path().join("big.bin"));
    std::fs::write(&small, b"hello").unwrap();
    std::fs::write(&big, bytes(20 << 20, 5)).unwrap();
    let mut command = ferry_as(&server, &dir.path().join("data"), "alice", &password);
    command
        // Half a second or so for the big file: progress is reported ten times a second.
        .env("FERRY_BANDWIDTH", (40 << 20).to_string())
        .args(["--json", "upload"])
        .arg(&small)
        .arg(&big);
    let output = succeeds(command).await;
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let results: Vec<_> = lines.iter().filter(|l| l["type"] == "result").collect();
    assert_eq!(results.len(), 2, "{lines:#?}");
    let mut previous = 0;
    for line in lines.iter().filter(|l| l["type"] != "result") {
        let at = line["at_ms"].as_i64().expect("every event has at_ms");
        assert!(at >= previous, "events out of order: {lines:#?}");
        previous = at;
    }
    for result in results {
        assert_eq!(result["state"], "confirmed", "{result}");
        let id = &result["file_id"];
        let states: Vec<&str> = lines
            .iter()
            .filter(|l| l["type"] == "state" && &l["file_id"] == id)
            .filter_map(|l| l["state"].as_str())
            .collect();
        assert_eq!(
            states,
            ["uploading", "uploaded", "confirmed"],
            "{}: {lines:#?}",
            result["path"]
        );
    }
    let progress = lines.iter().filter(|l| l["type"] == "progress").count();
    assert!(progress > 0, "no progress events: {lines:#?}");
}
