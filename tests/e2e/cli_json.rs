//! `ferry --json`: every event as a line of JSON on stdout, each stamped with when it
//! happened, and the closing summary as JSON lines — what scripts (and the bench's
//! watched-folder latency) read.

use ferry_protocol::Role;
use ferry_tests::{TestServer, bytes, ferry_as, folder_of, succeeds};

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

/// A file named twice in one `ferry upload`, as `ferry upload dir dir/a dir`: at two keys
/// (`dir/a` and `a`) it goes to both, as `cp -r dir dir/a dest` copies it twice; at the same
/// key again it is one file, listed again. The run is longer than the thousand rows the
/// command reads from the journal at once, so the mentions fall in different thousands:
/// every mention is listed in the order named, each confirmed, and the app server's history
/// has one upload per file and key. The same command again sends nothing: every file is at
/// every key already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_named_twice_goes_to_each_key_it_was_named_at_once() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let count = 1_000;
    let folder = folder_of(dir.path(), "many", count, ".txt", |i| bytes(64, i));
    let again = folder.join("f0000.txt");
    let run = || async {
        let mut command = ferry_as(&server, &dir.path().join("data"), "alice", &password);
        command
            .args(["--json", "upload"])
            .arg(&folder)
            .arg(&again)
            .arg(&folder);
        let output = succeeds(command).await;
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
            .filter(|line: &serde_json::Value| line["type"] == "result")
            .collect::<Vec<serde_json::Value>>()
    };
    let results = run().await;
    let count = count as usize;
    assert_eq!(results.len(), 2 * count + 1, "one line per file named");
    let unconfirmed: Vec<_> = results
        .iter()
        .filter(|r| r["state"] != "confirmed")
        .collect();
    assert!(unconfirmed.is_empty(), "{unconfirmed:#?}");
    let id = |r: &serde_json::Value| r["file_id"].as_i64().expect("a file id");
    let key = |r: &serde_json::Value| r["key"].as_str().expect("a key").to_owned();
    let (first, alone, second) = (&results[..count], &results[count], &results[count + 1..]);
    assert_eq!(
        alone["path"],
        again.display().to_string(),
        "listed where named"
    );
    assert!(
        key(alone).ends_with("/f0000.txt") && !key(alone).contains("many/"),
        "named alone, at its own name: {alone}"
    );
    assert!(key(&first[0]).ends_with("/many/f0000.txt"), "{}", first[0]);
    assert_ne!(id(alone), id(&first[0]), "each key has its own row");
    let ids: Vec<i64> = first.iter().map(id).collect();
    assert_eq!(
        ids,
        second.iter().map(id).collect::<Vec<_>>(),
        "the folder named again is the same files"
    );
    let distinct: std::collections::HashSet<i64> = results.iter().map(id).collect();
    assert_eq!(distinct.len(), count + 1);
    // The same command again: every file at every key is there already, none sent again.
    let again_results = run().await;
    assert_eq!(again_results.len(), results.len());
    let sent: Vec<_> = again_results
        .iter()
        .filter(|r| r["already"] != true || r["state"] != "confirmed")
        .collect();
    assert!(sent.is_empty(), "sent again: {sent:#?}");
    let client = server.login("alice", &password).await;
    let (mut keys, mut rows) = (std::collections::HashSet::new(), 0);
    let mut cursor: Option<String> = None;
    for _page in 0..10 {
        let query = match &cursor {
            Some(c) => format!("/api/v1/uploads?limit=500&cursor={c}"),
            None => "/api/v1/uploads?limit=500".to_owned(),
        };
        let page: ferry_protocol::UploadPage = client.get(&query).await.json(200);
        rows += page.items.len();
        keys.extend(page.items.iter().map(|r| r.key.clone()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let wanted: std::collections::HashSet<String> = results.iter().map(key).collect();
    assert_eq!(keys, wanted, "the history has the keys listed");
    assert_eq!(
        rows,
        count + 1,
        "one upload in the history per file and key"
    );
}
