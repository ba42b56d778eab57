//! The journal's file rows: states, parts, owners.

use super::*;

fn alice() -> Owner {
    Owner {
        server: "https://ferry.example".into(),
        user_id: 1,
        user_name: "alice".into(),
    }
}

/// Another account of alice's app server.
fn bob() -> Owner {
    Owner {
        user_id: 2,
        user_name: "bob".into(),
        ..alice()
    }
}

fn new_file(path: &Path) -> NewFile<'_> {
    NewFile {
        path,
        key: "a.bin",
        name: "a.bin",
        size: None,
        mtime_ns: None,
        on_conflict: crate::conflict::OnConflict::Ask,
    }
}

fn uploaded(checksum: &str) -> Uploaded<'_> {
    Uploaded {
        bucket: "b",
        key: "p/a.bin",
        etag: "etag",
        checksum,
        size: 16,
        mtime_ns: 7,
        sample: "sample-of-16",
    }
}

/// Alice's file at `path`, added and moved to `Uploading` (as the scheduler claims it).
fn uploading(journal: &Journal, path: &str) -> i64 {
    let id = journal
        .add(&alice(), &new_file(Path::new(path)), None)
        .unwrap();
    journal
        .set_state(id, FileState::Queued, FileState::Uploading)
        .unwrap();
    id
}

#[test]
fn an_uploaded_file_keeps_the_fingerprint_its_bytes_were_read_with() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
    let id = uploading(&journal, "/tmp/a.bin");
    journal.uploaded(id, &uploaded("md5:x")).unwrap();
    let row = journal.file(id).unwrap().unwrap();
    let print = (row.size, row.mtime_ns, row.sample.as_deref());
    assert_eq!(print, (Some(16), Some(7), Some("sample-of-16")));
    assert_eq!((row.state, row.bytes_done), (FileState::Uploaded, 16));
    // Refused (the file left `Uploading`): nothing of it is written.
    journal
        .set_state(id, FileState::Uploaded, FileState::Confirmed)
        .unwrap();
    let later = Uploaded {
        mtime_ns: 8,
        ..uploaded("md5:y")
    };
    assert!(journal.uploaded(id, &later).is_err());
    let row = journal.file(id).unwrap().unwrap();
    assert_eq!(
        (row.mtime_ns, row.checksum.as_deref()),
        (Some(7), Some("md5:x"))
    );
}

#[test]
fn a_file_moves_through_its_states_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let journal = Journal::open(&db).unwrap();
    let id = journal
        .add(&alice(), &new_file(Path::new("/tmp/a.bin")), None)
        .unwrap();
    assert_eq!(
        journal
            .runnable(&alice(), 10, &[], Awaiting::All)
            .unwrap()
            .len(),
        1
    );
    journal
        .set_state(id, FileState::Queued, FileState::Uploading)
        .unwrap();
    journal
        .begin_multipart(id, "up-1", 8, "b", "p/a.bin")
        .unwrap();
    journal
        .record_part(
            id,
            &PartRow {
                number: 2,
                size: 8,
                etag: "e2".into(),
                md5: "m2".into(),
                crc64: Some(2),
            },
        )
        .unwrap();
    journal
        .record_part(
            id,
            &PartRow {
                number: 1,
                size: 8,
                etag: "e1".into(),
                md5: "m1".into(),
                crc64: None,
            },
        )
        .unwrap();
    drop(journal);

    // As after kill -9: Uploading goes back to Queued, parts and upload id are kept.
    let journal = Journal::open(&db).unwrap();
    let row = journal.file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Queued);
    assert_eq!(row.upload_id.as_deref(), Some("up-1"));
    assert_eq!(row.bytes_done, 16);
    assert_eq!(
        journal
            .parts(id)
            .unwrap()
            .iter()
            .map(|p| p.number)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    journal
        .set_state(id, FileState::Queued, FileState::Uploading)
        .unwrap();
    assert_eq!(
        journal.fail(id, "network", "reset", Some(0)).unwrap(),
        Some(1)
    );
    assert_eq!(
        journal
            .runnable(&alice(), 10, &[], Awaiting::All)
            .unwrap()
            .len(),
        1,
        "due retries are runnable"
    );
    assert!(
        journal
            .set_state(id, FileState::Failed, FileState::Uploading)
            .unwrap()
    );
    journal.fail(id, "file_missing", "gone", None).unwrap();
    assert!(
        journal
            .runnable(&alice(), 10, &[], Awaiting::All)
            .unwrap()
            .is_empty(),
        "permanent failures wait for the user"
    );
    assert!(
        journal
            .set_state(id, FileState::Failed, FileState::Uploading)
            .unwrap()
    );
    journal.uploaded(id, &uploaded("md5:x")).unwrap();
    assert!(journal.parts(id).unwrap().is_empty());
    assert!(
        journal
            .set_state(id, FileState::Uploaded, FileState::Confirmed)
            .unwrap()
    );
    assert!(
        journal
            .runnable(&alice(), 10, &[], Awaiting::All)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn skipped_files_keep_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let id = journal
        .add(
            &alice(),
            &new_file(Path::new("/x/\u{FFFD}")),
            Some(("name_not_utf8", "not UTF-8")),
        )
        .unwrap();
    let row = journal.file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Skipped);
    assert_eq!(row.error_code.as_deref(), Some("name_not_utf8"));
}

#[test]
fn a_cancelled_file_cannot_become_uploaded_or_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let id = uploading(&journal, "/tmp/a.bin");
    // The user cancels while the upload is finishing...
    journal
        .move_states(
            &alice(),
            Some(&[id]),
            &[FileState::Uploading],
            FileState::Cancelled,
        )
        .unwrap();
    // ...and the finishing task's writes must not bring it back.
    let refused = journal.uploaded(id, &uploaded("md5:x")).unwrap_err();
    assert_eq!(refused.code(), "state_changed");
    assert_eq!(
        journal.file(id).unwrap().unwrap().state,
        FileState::Cancelled
    );
    assert!(
        !journal
            .set_state(id, FileState::Uploaded, FileState::Confirmed)
            .unwrap()
    );
    assert!(
        !journal
            .set_state(id, FileState::Uploading, FileState::Queued)
            .unwrap(),
        "a move from a state the file has left is refused"
    );
    assert_eq!(
        journal.file(id).unwrap().unwrap().state,
        FileState::Cancelled
    );
    assert_eq!(journal.fail(id, "network", "reset", Some(0)).unwrap(), None);
    assert_eq!(
        journal.file(id).unwrap().unwrap().state,
        FileState::Cancelled
    );
}

#[test]
fn moves_touch_only_the_owners_files_and_resume_starts_the_count_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let bob = bob();
    let mine = journal
        .add(&alice(), &new_file(Path::new("/a/mine")), None)
        .unwrap();
    let theirs = journal
        .add(&bob, &new_file(Path::new("/b/theirs")), None)
        .unwrap();
    let paused = journal
        .move_states(&alice(), None, &[FileState::Queued], FileState::Paused)
        .unwrap();
    assert_eq!(
        paused,
        [mine],
        "pause-all pauses only the account's own files"
    );
    assert_eq!(
        journal.file(theirs).unwrap().unwrap().state,
        FileState::Queued
    );
    assert!(journal.resume(&bob, Some(&[mine])).unwrap().is_empty());
    assert_eq!(
        journal.waiting_for_others(Some(&alice())).unwrap(),
        [super::Waiting {
            name: Some("bob".into()),
            server: None,
            files: 1
        }]
    );

    // A failed file resumed by the user gets all its attempts again.
    assert!(
        journal
            .set_state(mine, FileState::Paused, FileState::Queued)
            .unwrap()
    );
    for _ in 0..3 {
        journal
            .set_state(mine, FileState::Queued, FileState::Uploading)
            .unwrap();
        journal
            .set_state(mine, FileState::Failed, FileState::Uploading)
            .unwrap();
        journal.fail(mine, "network", "reset", None).unwrap();
    }
    assert_eq!(journal.file(mine).unwrap().unwrap().attempts, 3);
    assert_eq!(
        journal.resume(&alice(), None).unwrap(),
        [(mine, FileState::Queued)]
    );
    assert_eq!(journal.file(mine).unwrap().unwrap().attempts, 0);
}

/// "Retry" hurries an uploaded file's confirmation waiting for its next attempt (due now, its
/// attempts from zero) — the account's files only, the ones named only — and leaves an
/// uploaded file whose confirmation is not waiting alone.
#[test]
fn retrying_hurries_a_confirmation_waiting_for_its_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let bob = bob();
    let uploaded_by = |owner: &Owner, path: &str, deferred: bool| {
        let id = journal
            .add(owner, &new_file(Path::new(path)), None)
            .unwrap();
        journal
            .set_state(id, FileState::Queued, FileState::Uploading)
            .unwrap();
        journal.uploaded(id, &uploaded("md5:00")).unwrap();
        if deferred {
            let later = now() + 3600;
            journal
                .defer_confirmation(id, "network", "reset", later)
                .unwrap();
        }
        id
    };
    let (waiting, named, theirs) = (
        uploaded_by(&alice(), "/a/waiting", true),
        uploaded_by(&alice(), "/a/named", true),
        uploaded_by(&bob, "/b/theirs", true),
    );
    let going = uploaded_by(&alice(), "/a/going", false);
    // Its next attempt due already: its task is sending it, or about to.
    let due_now = uploaded_by(&alice(), "/a/due", false);
    journal
        .defer_confirmation(due_now, "network", "reset", now() - 1)
        .unwrap();
    let due = |id| {
        let row = journal.file(id).unwrap().unwrap();
        (row.state, row.next_retry_at.is_none(), row.attempts)
    };
    assert_eq!(due(waiting), (FileState::Uploaded, false, 1));

    assert_eq!(
        journal.retry(&alice(), Some(&[named])).unwrap(),
        [(named, FileState::Uploaded)]
    );
    assert_eq!(due(named), (FileState::Uploaded, true, 0));
    assert_eq!(due(waiting), (FileState::Uploaded, false, 1), "not named");
    assert!(journal.retry(&alice(), Some(&[theirs])).unwrap().is_empty());
    assert_eq!(
        journal.retry(&alice(), None).unwrap(),
        [(waiting, FileState::Uploaded)]
    );
    assert_eq!(due(waiting), (FileState::Uploaded, true, 0));
    assert_eq!(
        due(theirs),
        (FileState::Uploaded, false, 1),
        "another account's"
    );
    assert_eq!(due(going), (FileState::Uploaded, true, 0), "not waiting");
    assert_eq!(due(due_now), (FileState::Uploaded, false, 1), "due already");
}

#[test]
fn a_file_that_uploads_again_forgets_its_old_etag() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let id = uploading(&journal, "/a/f");
    journal.uploaded(id, &uploaded("md5:v1")).unwrap();
    // The confirmation was refused for good; the file changed and is sent again.
    journal.fail(id, "internal", "refused", None).unwrap();
    journal
        .set_state(id, FileState::Failed, FileState::Uploading)
        .unwrap();
    let row = journal.file(id).unwrap().unwrap();
    assert_eq!((row.etag, row.checksum), (None, None));
    journal.fail(id, "network", "reset", None).unwrap();
    assert_eq!(
        journal.resume(&alice(), None).unwrap(),
        [(id, FileState::Queued)],
        "without the old ETag, a resume uploads again instead of confirming v1"
    );
}

#[test]
fn files_with_ids_are_read_in_one_query_by_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            let path = PathBuf::from(format!("/f/{i}"));
            journal.add(&alice(), &new_file(&path), None).unwrap()
        })
        .collect();
    let asked = [ids[3], 9999, ids[0], ids[4], ids[3]];
    let rows = journal.files_with_ids(&asked).unwrap();
    let found: Vec<(i64, PathBuf)> = rows.into_iter().map(|r| (r.id, r.path)).collect();
    assert_eq!(
        found,
        [
            (ids[0], "/f/0".into()),
            (ids[3], "/f/3".into()),
            (ids[4], "/f/4".into())
        ]
    );
    assert!(journal.files_with_ids(&[]).unwrap().is_empty());
    let plan = journal.query_plan(&files_with_ids_sql()).join(" | ");
    assert!(
        plan.contains("SEARCH files USING INTEGER PRIMARY KEY"),
        "reads rows other than those asked for: {plan}"
    );
}

/// The queries run for every file (picking the next ones, checking a new file's key) find their
/// rows through an index in the order asked for: they never read the whole queue, so 50 000
/// queued files cost each file no more than 5 do.
#[test]
fn per_file_queries_never_read_the_whole_queue() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
    // A sort beside a read of `files` (under the same step) sorts every row read; one over a
    // subquery's rows sorts the few its LIMIT let through.
    let sorts_rows = |sql: &str| {
        let steps = journal.query_plan_steps(sql);
        steps.iter().any(|(_, parent, detail)| {
            detail.contains("TEMP B-TREE")
                && steps
                    .iter()
                    .any(|(_, p, d)| p == parent && d.contains(" files"))
        })
    };
    // (What it looks for, seen: a query that sorts what it reads, a list looked up between.)
    assert!(sorts_rows(
        "SELECT id FROM files WHERE server = ?1
         AND id NOT IN (SELECT value FROM json_each(?2)) ORDER BY name LIMIT 5"
    ));
    for sql in [
        runnable_sql(Awaiting::All),
        runnable_sql(Awaiting::Due),
        live_with_key_sql(),
        latest_for_path_sql(),
        newest_for_path_sql(),
    ] {
        let plan = journal.query_plan(&sql).join(" | ");
        assert!(!sorts_rows(&sql), "sorts the whole queue: {plan}\n{sql}");
        assert!(
            !plan.contains("SCAN files"),
            "reads every row: {plan}\n{sql}"
        );
        assert!(
            plan.split(" | ")
                .filter(|step| step.contains(" files"))
                .all(|step| ["state=?", "key=?", "path=?"]
                    .iter()
                    .any(|c| step.contains(c))),
            "reads all of the owner's rows: {plan}\n{sql}"
        );
    }
}

/// Opening the journal queues again what was left uploading, reading those rows only (no
/// index of every row's state is kept for it).
#[test]
fn reopening_reads_the_rows_left_uploading_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let journal = Journal::open(&db).unwrap();
    let plan = journal.query_plan(crate::journal::RESET).join(" | ");
    assert!(plan.ends_with("USING INDEX files_uploading"), "{plan}");
    let ids: Vec<i64> = ["/tmp/a", "/tmp/b"]
        .iter()
        .map(|p| {
            journal
                .add(&alice(), &new_file(Path::new(p)), None)
                .unwrap()
        })
        .collect();
    journal
        .set_state(ids[0], FileState::Queued, FileState::Uploading)
        .unwrap();
    drop(journal);
    let journal = Journal::open(&db).unwrap();
    assert_eq!(journal.uploading(&alice()).unwrap(), [0i64; 0]);
    let states: Vec<_> = ids
        .iter()
        .map(|&id| journal.file(id).unwrap().unwrap().state)
        .collect();
    assert_eq!(states, [FileState::Queued, FileState::Queued]);
}

#[test]
fn a_batch_of_confirmations_moves_only_files_still_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let ids: Vec<i64> = ["/tmp/a", "/tmp/b", "/tmp/c"]
        .iter()
        .map(|p| {
            let id = journal
                .add(&alice(), &new_file(Path::new(p)), None)
                .unwrap();
            journal
                .set_state(id, FileState::Queued, FileState::Uploading)
                .unwrap();
            id
        })
        .collect();
    journal.uploaded(ids[0], &uploaded("md5:a")).unwrap();
    journal.uploaded(ids[1], &uploaded("md5:b")).unwrap();
    // The third never finished sending: a batch naming it must not confirm it.
    // Another account's batch moves none of alice's files.
    let mut bob = alice();
    bob.user_id += 1;
    assert!(journal.confirm_uploaded(&bob, &ids).unwrap().is_empty());
    let moved = journal.confirm_uploaded(&alice(), &ids).unwrap();
    assert_eq!(moved, ids[..2]);
    let states: Vec<FileState> = ids
        .iter()
        .map(|id| journal.file(*id).unwrap().unwrap().state)
        .collect();
    assert_eq!(
        states,
        [
            FileState::Confirmed,
            FileState::Confirmed,
            FileState::Uploading
        ]
    );
    // Again: nothing left to move.
    assert!(journal.confirm_uploaded(&alice(), &ids).unwrap().is_empty());
}

#[test]
fn a_claim_moves_only_files_still_in_the_state_they_were_read_in() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let ids: Vec<i64> = ["/tmp/a", "/tmp/b", "/tmp/c", "/tmp/d"]
        .iter()
        .map(|p| {
            journal
                .add(&alice(), &new_file(Path::new(p)), None)
                .unwrap()
        })
        .collect();
    // b was paused after the scheduler read it; d failed earlier and is due again.
    journal
        .set_state(ids[1], FileState::Queued, FileState::Paused)
        .unwrap();
    journal
        .set_state(ids[3], FileState::Queued, FileState::Uploading)
        .unwrap();
    journal.uploaded(ids[3], &uploaded("md5:d")).unwrap();
    let read = [
        (ids[0], FileState::Queued),
        (ids[1], FileState::Queued),
        (ids[2], FileState::Queued),
        // Read as uploaded: only confirmed again, never claimed for sending.
        (ids[3], FileState::Uploaded),
    ];
    let mut bob = alice();
    bob.user_id += 1;
    assert!(journal.claim(&bob, &read).unwrap().is_empty());
    assert_eq!(journal.claim(&alice(), &read).unwrap(), [ids[0], ids[2]]);
    let row = |id: i64| journal.file(id).unwrap().unwrap();
    assert_eq!(row(ids[0]).state, FileState::Uploading);
    assert_eq!(row(ids[1]).state, FileState::Paused);
    assert_eq!(row(ids[3]).state, FileState::Uploaded);
    assert_eq!(row(ids[3]).etag.as_deref(), Some("etag"));
    // Claimed once: a second claim of the same reading moves nothing.
    assert!(journal.claim(&alice(), &read).unwrap().is_empty());
}

#[test]
fn a_transaction_keeps_all_its_writes_or_none_and_an_inner_one_joins_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let add = |p: &str| journal.add(&alice(), &new_file(Path::new(p)), None);
    let failed: Result<()> = journal.transaction(|j| {
        j.add(&alice(), &new_file(Path::new("/tmp/a")), None)?;
        // A write that uses its own savepoint inside, as a batch of confirmations does.
        j.transaction(|j| j.add(&alice(), &new_file(Path::new("/tmp/b")), None))?;
        Err(crate::error::Error::Closed)
    });
    assert!(failed.is_err());
    assert!(journal.counts(&alice()).unwrap().is_empty(), "rolled back");
    // A panic inside rolls back too, and the journal is usable after it.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = journal.transaction(|j| -> Result<()> {
            j.add(&alice(), &new_file(Path::new("/tmp/c")), None)?;
            panic!("inside");
        });
    }));
    assert!(panicked.is_err());
    assert!(journal.counts(&alice()).unwrap().is_empty(), "rolled back");
    let ids = journal
        .transaction(|_| Ok((add("/tmp/d")?, add("/tmp/e")?)))
        .unwrap();
    assert_eq!(journal.counts(&alice()).unwrap(), [(FileState::Queued, 2)]);
    assert_ne!(ids.0, ids.1);
    // Other writers wait for it rather than joining it: a thread's write made while a
    // transaction is open lands after its commit and is not rolled back with it.
    let (begun_tx, begun_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let other = s.spawn(move || {
            begun_rx.recv().unwrap();
            add("/tmp/f").unwrap()
        });
        let _: Result<()> = journal.transaction(|j| {
            begun_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            j.add(&alice(), &new_file(Path::new("/tmp/g")), None)?;
            Err(crate::error::Error::Closed)
        });
        other.join().unwrap();
    });
    assert_eq!(journal.counts(&alice()).unwrap(), [(FileState::Queued, 3)]);
}

#[test]
fn files_being_worked_on_are_passed_over_and_the_limit_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            let path = PathBuf::from(format!("/tmp/{i}"));
            journal.add(&alice(), &new_file(&path), None).unwrap()
        })
        .collect();
    // 0 and 1 uploaded (0 being confirmed by its task), 2 and 3 queued (2 just started),
    // 4 failed and due.
    for &id in &ids[..2] {
        journal
            .set_state(id, FileState::Queued, FileState::Uploading)
            .unwrap();
        journal.uploaded(id, &uploaded("md5:x")).unwrap();
    }
    journal
        .set_state(ids[4], FileState::Queued, FileState::Uploading)
        .unwrap();
    journal.fail(ids[4], "network", "reset", Some(0)).unwrap();
    let runnable = |limit, busy: &[i64]| -> Vec<i64> {
        let rows = journal
            .runnable(&alice(), limit, busy, Awaiting::All)
            .unwrap();
        rows.iter().map(|r| r.id).collect()
    };
    assert_eq!(runnable(10, &[]), ids);
    assert_eq!(runnable(3, &[ids[0], ids[2]]), [ids[1], ids[3], ids[4]]);
    assert_eq!(runnable(2, &[ids[0], ids[2]]), [ids[1], ids[3]]);
    assert_eq!(runnable(10, &ids), [0i64; 0]);
    // While files are uploading, the uploaded ones are their tasks' to confirm: only those
    // due again are read.
    let rows = journal.runnable(&alice(), 10, &[], Awaiting::Due).unwrap();
    let due: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(due, ids[2..]);
    journal
        .defer_confirmation(ids[1], "network", "reset", 0)
        .unwrap();
    let rows = journal.runnable(&alice(), 10, &[], Awaiting::Due).unwrap();
    let due: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(due, ids[1..]);
}

/// The statements run for every file are parsed once per connection. (SQLite prepares a
/// statement again before it runs when its plan was chosen by a bound value and the bindings
/// were cleared — as the statement cache clears them each time: it did, for every file.)
#[test]
fn statements_run_for_every_file_are_not_prepared_again_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    for i in 0..5i64 {
        let path = PathBuf::from(format!("/tmp/{i}"));
        journal.latest_for_path(&alice(), &path).unwrap();
        journal.newest_for_path(&alice(), &path, 16).unwrap();
        journal.live_with_key(&alice(), "a.bin", &path).unwrap();
        journal.add(&alice(), &new_file(&path), None).unwrap();
        journal
            .runnable(&alice(), 1 + i as usize, &[i], Awaiting::All)
            .unwrap();
        journal
            .runnable(&alice(), 1 + i as usize, &[i], Awaiting::Due)
            .unwrap();
    }
    for sql in [
        latest_for_path_sql(),
        newest_for_path_sql(),
        live_with_key_sql(),
        runnable_sql(Awaiting::All),
        runnable_sql(Awaiting::Due),
    ] {
        // Kept (the cache's statement ran every time), and never prepared again.
        assert_eq!(journal.statement_status(&sql), (5, 0), "{sql}");
    }
}

/// A file's row written (added, and moved through its states, several times per file) and the
/// per-file queries open no temporary tables: a partial index whose condition is an `IN (…)`
/// list made every write of a row build one for each list, old row and new — a quarter of the
/// client's CPU on 32-KiB files.
#[test]
fn state_changes_and_per_file_queries_open_no_temporary_tables() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db")).unwrap();
    let change = "UPDATE files SET state = ?2, updated_at = ?3 WHERE id = ?1".to_owned();
    let insert = "INSERT INTO files (path, key, name, state, created_at, updated_at, server,
         user_id) VALUES (?1, ?2, ?2, 'queued', ?3, ?3, ?4, ?5)"
        .to_owned();
    for sql in [change, insert, live_with_key_sql()] {
        let opened = journal.program(&sql);
        let temporary = opened.iter().filter(|op| *op == "OpenEphemeral").count();
        assert_eq!(temporary, 0, "{sql}\n{opened:?}");
    }
}

/// A journal an older Ferry still holds, at the oldest schema a reader takes (made by the
/// migrations up to [`READ_FROM`], and a row written as such a Ferry wrote it), is read as
/// `ferry status` and the diagnostics
/// read it: the queue and its totals, the counts, the newest and the troubled files, other
/// accounts' files. A reader that names a column added later fails here.
#[test]
fn a_journal_at_the_oldest_schema_a_reader_takes_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    for sql in &crate::journal::MIGRATIONS[..crate::journal::READ_FROM] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute(
        "INSERT INTO files (path, display_path, key, name, size, mtime_ns, state, error_code,
             error_message, created_at, updated_at, server, user_id, user_name, on_conflict)
         VALUES (?1, '/tmp/a', 'a.bin', 'a.bin', 3, 1, 'failed', 'exists', 'taken', 1, 1,
             ?2, ?3, 'alice', 'ask')",
        rusqlite::params![
            path_bytes(Path::new("/tmp/a")),
            alice().server,
            alice().user_id
        ],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", crate::journal::READ_FROM)
        .unwrap();
    drop(conn);
    let reader = Journal::open_read_only(&db).unwrap();
    let view = reader
        .view(Some(&alice()), crate::journal::Show::Unfinished, 0, 10)
        .unwrap();
    let ids: Vec<i64> = view.page.rows.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(view.totals.counts, [(FileState::Failed, 1)]);
    for (show, rows) in [
        (crate::journal::Show::All, 1),
        (crate::journal::Show::Failed, 1),
        (crate::journal::Show::Finished, 0),
    ] {
        let view = reader.view(Some(&alice()), show, 0, 10).unwrap();
        assert_eq!(view.page.rows.len(), rows, "{show:?}");
    }
    assert_eq!(reader.counts(&alice()).unwrap(), [(FileState::Failed, 1)]);
    assert_eq!(reader.files(20).unwrap().len(), 1);
    let troubled = reader.troubled(&alice(), 10).unwrap();
    assert_eq!(troubled[0].error_code.as_deref(), Some("exists"));
    assert!(
        reader
            .waiting_for_others(Some(&alice()))
            .unwrap()
            .is_empty()
    );
    assert_eq!(reader.waiting_for_others(None).unwrap().len(), 1);
}
