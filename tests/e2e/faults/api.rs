//! Faults between the engine and the app server: grants and confirmations.

use std::time::Duration;

use ferry_engine::events::Event;
use ferry_engine::journal::FileState;
use ferry_tests::proxy::{Action, Rule};
use ferry_tests::within;

use super::{MIB, Rig, assert_no_failure, failures, retries};

const GRANTS: &str = "/api/v1/grants";
const UPLOADS: &str = "/api/v1/uploads";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_errors_are_retried_without_failing_the_file() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("granted.bin", 24 * MIB, 20);
    let busy = rig.api.add(
        Rule::new(Action::api_error(503, "internal", "the database is busy"))
            .method("POST")
            .target(GRANTS)
            .times(2),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();

    assert_eq!(summary.confirmed, 1);
    assert_eq!(busy.applied(), 2);
    assert_no_failure(&events);
    assert_eq!(
        rig.api.count("POST", GRANTS),
        3,
        "two refusals, then one grant"
    );
    rig.assert_arrived_once(&engine, &events, &[source]).await;
    let retried: Vec<_> = retries(&events)
        .into_iter()
        .filter(|r| r.error.message.contains("the database is busy"))
        .collect();
    assert_eq!(retried.len(), 2, "{retried:#?}");
    assert!(retried.iter().all(|r| r.error.code == "internal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_lost_confirmations_are_retried_and_recorded_once() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("c1.txt", MIB, 21),
        rig.file("c2.txt", MIB, 22),
        rig.file("c3.bin", 24 * MIB, 23),
    ];
    let post = |action| Rule::new(action).method("POST").target(UPLOADS);
    let rules = [
        rig.api.add(post(Action::ResetAfter(10)).nth(1)),
        rig.api.add(post(Action::DropAnswer).nth(2)),
        rig.api.add(post(Action::Truncate(10)).nth(3)),
        rig.api.add(
            post(Action::api_error(
                503,
                "internal",
                "confirmations are paused",
            ))
            .skip(3)
            .times(2),
        ),
    ];
    // One confirmation per request here: what is counted is the retries of each.
    let (engine, events) = rig.engine(|c| c.transfer.batch_confirmations = false).await;
    let summary = Rig::upload_all(&engine, &files, 90, "the upload").await;

    assert_eq!(summary.confirmed, 3);
    let applied: Vec<u64> = rules.iter().map(|r| r.applied()).collect();
    assert_eq!(applied, [1, 1, 1, 2]);
    assert_eq!(
        rig.api.count("POST", UPLOADS),
        3 + 5,
        "one request per file and one per fault"
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
    let retried: Vec<_> = retries(&events)
        .into_iter()
        .filter(|r| r.operation.contains("confirm"))
        .collect();
    let codes: Vec<&str> = retried.iter().map(|r| r.error.code.as_str()).collect();
    assert_eq!(codes.len(), 5, "one retry per fault: {retried:#?}");
    assert_eq!(codes.iter().filter(|c| **c == "network").count(), 3);
    assert_eq!(codes.iter().filter(|c| **c == "internal").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_and_trickling_app_server_is_waited_for() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("patient.bin", 24 * MIB, 24),
        rig.file("patient.txt", MIB, 25),
    ];
    let latency = rig
        .api
        .add(Rule::new(Action::Latency(Duration::from_millis(200))));
    let trickle = rig.api.add(
        Rule::new(Action::Trickle {
            chunk: 32,
            every: Duration::from_millis(20),
        })
        .target(GRANTS),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 2);
    assert_eq!(latency.applied(), rig.api.traffic().requests);
    assert!(trickle.matched() >= 1, "a grant was fetched");
    assert!(retries(&events).is_empty());
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_grant_fails_the_file_with_a_reason_and_loses_nothing() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("odd-grant.txt", MIB, 26);
    let garbled = rig.api.add(
        Rule::new(Action::respond(
            200,
            "application/json",
            r#"{"provider":"s3","endpoint":"#,
        ))
        .method("POST")
        .target(GRANTS)
        .nth(1),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();

    assert_eq!(garbled.applied(), 1);
    let row = engine.journal().file(source.id(&engine)).unwrap().unwrap();
    assert_eq!(row.state, FileState::Failed, "{row:?}");
    assert_eq!(row.error_code.as_deref(), Some("protocol"));
    assert!(row.error_message.as_deref().is_some_and(|m| !m.is_empty()));
    assert_eq!(failures(&events).len(), 1);

    engine.transfer().resume(None).await.unwrap();
    let summary = within(60, "the upload, resumed", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_refused_for_good_fails_the_file_with_a_reason_after_bounded_attempts() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("unconfirmed.txt", MIB, 27);
    let refuse = rig.api.add(
        Rule::new(Action::api_error(503, "internal", "confirmations are off"))
            .method("POST")
            .target(UPLOADS),
    );
    let file_attempts = 2;
    let (engine, events) = rig
        .engine(|c| {
            c.transfer.max_attempts = file_attempts;
            c.transfer.batch_confirmations = false;
        })
        .await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let summary = within(45, "giving up on the confirmation", engine.run_until_idle())
        .await
        .unwrap();

    assert_eq!((summary.confirmed, summary.failed), (0, 1));
    let row = engine.journal().file(source.id(&engine)).unwrap().unwrap();
    assert_eq!(row.state, FileState::Failed, "{row:?}");
    assert_eq!(row.error_code.as_deref(), Some("internal"));
    assert!(
        row.error_message
            .as_deref()
            .is_some_and(|m| m.contains("confirmations are off")),
        "{row:?}"
    );
    let shown = failures(&events);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(
        shown[0].1.as_ref().map(|e| e.code.as_str()),
        Some("internal")
    );
    let retried = retries(&events);
    let bound = retried
        .first()
        .expect("the confirmation was retried")
        .max_attempts;
    assert!(
        refuse.applied() <= u64::from(file_attempts * bound),
        "{} confirmations for at most {file_attempts} × {bound} attempts",
        refuse.applied()
    );

    refuse.remove();
    engine.transfer().resume(None).await.unwrap();
    let summary = within(
        60,
        "the confirmation after healing",
        engine.run_until_idle(),
    )
    .await
    .unwrap();
    assert_eq!(summary.confirmed, 1);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

/// A confirmation waiting for its next attempt (refused by the app server; the wait pushed an
/// hour out, as after many refusals) is sent at once when the user says "Retry now", not when
/// its wait ends: the file is confirmed in seconds once the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_confirmation_waiting_for_its_next_attempt_sends_it_at_once() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("later.txt", 1000, 64);
    let refuse = rig.api.add(
        Rule::new(Action::api_error(503, "internal", "confirmations are off"))
            .method("POST")
            .target(UPLOADS),
    );
    let (engine, events) = rig.engine(|c| c.transfer.batch_confirmations = false).await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let id = source.id(&engine);
    let running = engine.run_until_idle();
    tokio::pin!(running);
    let deferred = async {
        loop {
            let row = engine.journal().file(id).unwrap().unwrap();
            if row.state == FileState::Uploaded && row.next_retry_at.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        done = &mut running => panic!("finished with confirmations refused: {done:?}"),
        () = within(60, "the confirmation deferred", deferred) => {}
    }
    // Its next attempt an hour away — and still so a few seconds later: no attempt of its own
    // (due 2 s after the first) came in between to set a time of its own.
    let journal = engine.journal();
    let mut pushed = false;
    for _ in 0..5 {
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        journal
            .defer_confirmation(id, "internal", "confirmations are off", later)
            .unwrap();
        tokio::select! {
            done = &mut running => panic!("finished with confirmations refused: {done:?}"),
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        let row = journal.file(id).unwrap().unwrap();
        if row.state == FileState::Uploaded && row.next_retry_at == Some(later) {
            pushed = true;
            break;
        }
    }
    assert!(pushed, "the confirmation kept its own time");
    refuse.remove();
    engine.transfer().retry(Some(&[id])).await.unwrap();
    let summary = within(30, "the confirmation sent at once", running)
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

/// Small files that finish together are confirmed in batches; a batch whose request breaks,
/// or whose answer is lost after the server recorded it, is settled file by file — every file
/// confirmed, every upload recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_lost_batch_of_confirmations_is_settled_file_by_file_and_recorded_once() {
    let rig = Rig::start(|_| {}).await;
    let files: Vec<_> = (0..24)
        .map(|i| rig.file(&format!("small-{i:02}.txt"), 4096, 300 + i))
        .collect();
    let batch = |action| {
        Rule::new(action)
            .method("POST")
            .target("/api/v1/uploads/batch")
    };
    let rules = [
        rig.api.add(batch(Action::ResetAfter(10)).nth(1)),
        rig.api.add(batch(Action::DropAnswer).nth(2)),
    ];
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 90, "the upload").await;

    assert_eq!(summary.confirmed, 24);
    let applied: Vec<u64> = rules.iter().map(|r| r.applied()).collect();
    assert_eq!(applied, [1, 1], "both faults met a batch");
    let batches = rig.api.count("POST", "/api/v1/uploads/batch");
    let alone = rig.api.count("POST", UPLOADS) - batches;
    assert!(
        batches >= 3 && batches + alone < 24 + 2,
        "{batches} batches and {alone} single confirmations for 24 files"
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
}

/// A file the store has holds no slot while its confirmation waits: with one file sending at
/// a time and an app server that takes 3 s to answer, the next files start before the first
/// is confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_waiting_for_its_confirmation_leaves_its_slot_to_the_next() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("first.txt", 1000, 61),
        rig.file("second.txt", 1000, 62),
        rig.file("third.txt", 1000, 63),
    ];
    let slow = rig.api.add(
        Rule::new(Action::Latency(Duration::from_secs(3)))
            .method("POST")
            .target(UPLOADS),
    );
    let (engine, events) = rig.engine(|c| c.transfer.files = 1).await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 3);
    assert!(slow.applied() >= 1);
    let ids: Vec<i64> = files.iter().map(|f| f.id(&engine)).collect();
    let when = |id: i64, wanted: FileState| {
        events
            .events()
            .iter()
            .position(|e| matches!(e, Event::State { file_id, state, .. } if *file_id == id && *state == wanted))
            .unwrap_or_else(|| panic!("file {id} reached {wanted:?}"))
    };
    let first_confirmed = ids.iter().map(|id| when(*id, FileState::Confirmed)).min();
    let last_started = ids.iter().map(|id| when(*id, FileState::Uploading)).max();
    assert!(
        last_started < first_confirmed,
        "every file started before any was confirmed (events {last_started:?}, {first_confirmed:?})"
    );
    rig.assert_arrived_once(&engine, &events, &files).await;
}

/// Many files confirmed by an app server 1 s away: batches go a few at once while many wait,
/// and with batches off, confirmations sent alone stay within their own limit — the server is
/// never met by one request per file at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_to_a_slow_server_go_a_few_at_once_never_all() {
    for batches in [true, false] {
        let rig = Rig::start(|_| {}).await;
        let files: Vec<_> = (0..48)
            .map(|i| rig.file(&format!("f{i}.txt"), 500, 70 + i))
            .collect();
        rig.api.add(
            Rule::new(Action::Latency(Duration::from_secs(1)))
                .method("POST")
                .target(UPLOADS),
        );
        let (engine, events) = rig
            .engine(|c| c.transfer.batch_confirmations = batches)
            .await;
        let summary = Rig::upload_all(&engine, &files, 120, "the upload").await;

        assert_eq!(summary.confirmed, 48);
        let most = rig.api.traffic().most_at_once;
        // Batches: up to 4 on their way; alone: up to 8 (a grant may overlap either).
        let allowed = if batches { 2..=5 } else { 2..=9 };
        assert!(allowed.contains(&most), "batches {batches}: {most} at once");
        rig.assert_arrived_once(&engine, &events, &files).await;
    }
}

/// Someone signs in — another account, or alice again — while a batch of alice's
/// confirmations is on its way: whatever the server answers, the batch journals nothing for
/// files whose task ended — they stay `uploaded`, and when alice runs again they are confirmed
/// again (idempotent) and said to be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answered_after_a_new_sign_in_confirms_nothing_behind_its_back() {
    for other in ["bob", "alice"] {
        batch_answered_after_sign_in(other).await;
    }
}

async fn batch_answered_after_sign_in(other: &'static str) {
    let rig = Rig::start(|_| {}).await;
    let bob = rig.server.add_user("bob", ferry_protocol::Role::User);
    let files: Vec<_> = (0..3)
        .map(|i| rig.file(&format!("a{i}.txt"), 700, 90 + i))
        .collect();
    let slow = rig.api.add(
        Rule::new(Action::Latency(Duration::from_secs(3)))
            .method("POST")
            .target("/api/v1/uploads/batch")
            .times(1),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    let ids = engine.enqueue(&paths).await.unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    let state = |id: i64| engine.journal().file(id).unwrap().unwrap().state;
    // Every file in the store, the first batch held on its way.
    within(30, "three files uploaded, a batch on its way", async {
        while slow.applied() == 0 || ids.iter().any(|id| state(*id) != FileState::Uploaded) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Nothing runs until the answer is in: only the batch's own write could move the rows.
    runner.abort();
    let _ = runner.await;
    let sign_in = |name: &'static str, password: String| {
        let engine = &engine;
        async move {
            let secret = ferry_engine::secret::Secret::new(password);
            engine.sign_in(name, &secret, "test-device").await.unwrap();
        }
    };
    let password = if other == "bob" {
        bob
    } else {
        rig.password.clone()
    };
    sign_in(other, password).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(slow.applied(), 1);
    for id in &ids {
        assert_eq!(state(*id), FileState::Uploaded, "{other}: file {id}");
    }

    if other != "alice" {
        sign_in("alice", rig.password.clone()).await;
    }
    let summary = within(60, "alice's queue", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 3);
    let shown: Vec<i64> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::State {
                file_id,
                state: FileState::Confirmed,
                ..
            } => Some(file_id),
            _ => None,
        })
        .collect();
    for id in &ids {
        assert!(
            shown.contains(id),
            "{other}: file {id} was said to be confirmed"
        );
    }
    rig.assert_arrived_once(&engine, &events, &files).await;
}

/// An engine on `rig`'s data dir and API proxy with `keychain` (holding a kept session).
fn engine_on(
    rig: &Rig,
    keychain: std::sync::Arc<dyn ferry_engine::keychain::Keychain>,
) -> ferry_engine::Engine {
    ferry_engine::Engine::open(ferry_engine::EngineConfig {
        data_dir: rig.dir.path().join("data"),
        server: rig.api.url(),
        keychain,
        events: ferry_engine::events::discard(),
        transfer: Default::default(),
        grant: Default::default(),
        device: "test-device".into(),
        token_server: None,
        network: Default::default(),
    })
    .unwrap()
}

/// Signs alice in on `rig` and closes that engine: her session is kept in the keychain it
/// returns.
async fn kept_session(rig: &Rig) -> std::sync::Arc<dyn ferry_engine::keychain::Keychain> {
    let keychain: std::sync::Arc<dyn ferry_engine::keychain::Keychain> =
        std::sync::Arc::new(ferry_engine::keychain::MemoryKeychain::default());
    let kept = keychain.clone();
    let (engine, _) = rig.engine(|c| c.keychain = kept).await;
    engine.close().await;
    keychain
}

/// Started before the network is up (autostart at login): the app server cannot be reached,
/// so the session kept in the keychain is taken as it is — not as a sign-out — and the queue
/// waits, then goes up once the server answers again. A one-off restore says the server is
/// unreachable instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_while_the_server_is_unreachable_keeps_the_session_and_uploads_later() {
    let rig = Rig::start(|_| {}).await;
    let keychain = kept_session(&rig).await;
    let down = rig.api.add(Rule::new(Action::ResetAfter(0)));
    let engine = engine_on(&rig, keychain);
    let once = within(60, "a one-off restore", engine.restore()).await;
    assert_eq!(
        once.map_err(|e| e.code().to_owned()).err().as_deref(),
        Some("network")
    );
    let restored = within(60, "the restore", engine.restore_even_offline()).await;
    assert_eq!(
        restored
            .expect("no error while the server is unreachable")
            .map(|u| u.name),
        Some("alice".to_owned()),
        "the kept session is used"
    );

    let file = rig.file("after-the-outage.bin", 1000, 3);
    engine
        .enqueue(std::slice::from_ref(&file.path))
        .await
        .unwrap();
    let run = tokio::spawn(async move {
        let summary = within(180, "the upload", engine.run_until_idle()).await;
        (engine, summary)
    });
    // The queue tries the server (for a grant) and waits while it is down.
    let tried = down.applied();
    within(60, "another try", async {
        while down.applied() < tried + 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(!run.is_finished(), "the queue waits for the server");
    down.remove();
    let (_engine, summary) = run.await.unwrap();
    assert_eq!(summary.unwrap().confirmed, 1);
}

/// Offline, a kept session that has expired is not taken: the restore says the server cannot
/// be reached (the window offers "Try again"), and nobody is signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_kept_session_is_not_taken_while_the_server_is_unreachable() {
    let rig = Rig::start(|o| o.session_ttl = Duration::from_secs(2)).await;
    let keychain = kept_session(&rig).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _down = rig.api.add(Rule::new(Action::ResetAfter(0)));
    let engine = engine_on(&rig, keychain);
    let restored = within(60, "the restore", engine.restore_even_offline()).await;
    assert_eq!(
        restored.map_err(|e| e.code().to_owned()),
        Err("network".to_owned())
    );
    assert!(engine.session().user().is_none(), "nobody is signed in");
}

/// The app server stops answering, then answers again: the engine says so once each way, and
/// `online()` follows (the window's status bar says "Offline", then "Connected").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_says_when_the_app_server_stops_answering_and_answers_again() {
    let rig = Rig::start(|_| {}).await;
    let (engine, events) = rig.engine(|_| {}).await;
    assert!(engine.online());
    let down = rig.api.add(Rule::new(Action::ResetAfter(0)));
    for _ in 0..2 {
        let refused = within(60, "a history read", engine.history("limit=1")).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|e| e.code().to_owned()),
            Err("network".to_owned())
        );
        assert!(!engine.online());
    }
    down.remove();
    within(60, "a history read", engine.history("limit=1"))
        .await
        .unwrap();
    assert!(engine.online());
    let told: Vec<bool> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Connection { online } => Some(online),
            _ => None,
        })
        .collect();
    assert_eq!(told, [false, true], "told once each way");
}

/// Files whose confirmation was refused for good, resumed while other files upload, are
/// confirmed at once: the scheduler, while its looks for uploaded files no task has find some,
/// looks again in its next round — not a slot's worth once a second, behind the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_resumed_while_files_upload_go_at_once() {
    let rig = Rig::start(|_| {}).await;
    let unconfirmed: Vec<_> = (0..40)
        .map(|i| rig.file(&format!("unconfirmed/{i:02}.txt"), 1000, 400 + i))
        .collect();
    let refuse = rig.api.add(
        Rule::new(Action::api_error(503, "internal", "confirmations are off"))
            .method("POST")
            .target(UPLOADS),
    );
    let (engine, events) = rig
        .engine(|c| {
            c.transfer.max_attempts = 1;
            c.transfer.files = 4;
        })
        .await;
    let summary = Rig::upload_all(&engine, &unconfirmed, 60, "refused confirmations").await;
    assert_eq!((summary.confirmed, summary.failed), (0, 40), "{summary:?}");
    refuse.remove();
    // From here on a file may fail as often as usual (one transient error must not fail one
    // of the 440 for good).
    let mut settings = engine.transfer_settings();
    settings.max_attempts = ferry_engine::transfer::TransferSettings::default().max_attempts;
    engine.set_transfer(&settings).await;

    let more: Vec<_> = (0..400)
        .map(|i| rig.file(&format!("more/{i:03}.txt"), 1000, 1000 + i))
        .collect();
    let folder = more[0].path.parent().unwrap().to_owned();
    engine.enqueue(&[folder]).await.unwrap();
    let confirmed = |from: usize| {
        events.events()[from..]
            .iter()
            .filter_map(|e| match e {
                Event::State {
                    file_id,
                    state: FileState::Confirmed,
                    ..
                } => Some(*file_id),
                _ => None,
            })
            .collect::<Vec<i64>>()
    };
    let start = events.events().len();
    let running = engine.run_until_idle();
    tokio::pin!(running);
    // Resumed once the other files are on their way.
    let underway = async {
        while confirmed(start).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        done = &mut running => panic!("ended before the files resumed: {done:?}"),
        () = within(60, "the first of the other files", underway) => {}
    }
    engine.transfer().resume(None).await.unwrap();
    // (What the test can tell apart: most of the other files were still to come.)
    let confirmed_at_resume = confirmed(start).len();
    assert!(
        confirmed_at_resume < 100,
        "{confirmed_at_resume} of the 400 other files were confirmed before the resume"
    );
    let summary = within(120, "every file", running).await.unwrap();
    assert_eq!(summary.confirmed, 440, "{summary:?}");

    let resumed: Vec<i64> = unconfirmed.iter().map(|f| f.id(&engine)).collect();
    let order = confirmed(start);
    let last_resumed = order
        .iter()
        .rposition(|id| resumed.contains(id))
        .expect("the resumed files were confirmed");
    let others_before = order[..last_resumed]
        .iter()
        .filter(|id| !resumed.contains(id))
        .count();
    assert!(
        others_before < 200,
        "{others_before} of the 400 other files were confirmed before the last resumed one \
         ({confirmed_at_resume} before the resume)"
    );
    rig.assert_arrived_once(&engine, &events, &unconfirmed)
        .await;
}
