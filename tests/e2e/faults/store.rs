//! Faults between the engine and the store.

use std::time::{Duration, Instant};

use ferry_engine::journal::FileState;
use ferry_tests::proxy::{Action, Rule};
use ferry_tests::within;

use super::{MIB, PART, Rig, assert_no_failure, failures, retries, retries_of};

/// Attempt numbers of one chain of retries go up one at a time.
fn assert_consecutive(chain: &[super::Retry]) {
    for pair in chain.windows(2) {
        assert_eq!(pair[1].attempt, pair[0].attempt + 1, "{chain:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_reset_mid_body_is_retried_and_only_that_part_goes_again() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("reset.bin", 40 * MIB, 1);
    let reset = rig.store.add(
        Rule::new(Action::ResetAfter(MIB as u64))
            .method("PUT")
            .target("reset.bin?partNumber=2&")
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
    assert_eq!(reset.applied(), 2);
    assert_no_failure(&events);
    assert_eq!(
        rig.store.count("PUT", "partNumber=2&"),
        3,
        "two resets, one success"
    );
    for n in [1, 3, 4, 5] {
        let sent = rig.store.count("PUT", &format!("partNumber={n}&"));
        assert_eq!(sent, 1, "part {n} went once");
    }
    let id = source.id(&engine);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
    let retried = retries_of(&events, "UploadPart");
    assert_eq!(retried.len(), 2, "one retry per reset: {retried:#?}");
    assert_consecutive(&retried);
    for retry in &retried {
        assert_eq!(retry.file_id, Some(id));
        assert_eq!(retry.error.code, "network", "{retry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_part_waits_and_goes_on_without_a_retry() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("stall.bin", 24 * MIB, 2);
    let stall = rig.store.add(
        Rule::new(Action::Stall {
            after: 2 * MIB as u64,
            pause: Duration::from_secs(3),
        })
        .method("PUT")
        .target("partNumber=2&")
        .nth(1),
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
    assert_eq!(stall.applied(), 1);
    assert!(retries(&events).is_empty(), "a 3 s stall is not an error");
    assert_no_failure(&events);
    assert_eq!(rig.store.count("PUT", "partNumber=2&"), 1);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_every_request_slows_but_never_fails() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("slow.bin", 24 * MIB, 3),
        rig.file("slow.txt", MIB, 4),
    ];
    let store = rig
        .store
        .add(Rule::new(Action::Latency(Duration::from_millis(150))));
    let api = rig
        .api
        .add(Rule::new(Action::Latency(Duration::from_millis(150))));
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 2);
    assert_eq!(
        store.applied(),
        rig.store.traffic().requests,
        "every store request"
    );
    assert_eq!(
        api.applied(),
        rig.api.traffic().requests,
        "every API request"
    );
    assert!(retries(&events).is_empty());
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
}

/// Many small files: their requests go over connections kept between them. A second upload of
/// as many files right after the first finds the first one's connections idle and opens next
/// to none (seen: 64–68 for the first, none more). While the engine kept at most 16 idle with
/// up to 64 files in flight, it opened 188–244 for the first 1 000 files and 311–324 more for
/// the next — a handshake and a dozen system calls for every few files, at both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_reuse_the_connections_they_opened() {
    let rig = Rig::start(|_| {}).await;
    // (Keys are file names: each upload has names and bytes of its own.)
    let batch = |name: &str, seed: u64| -> Vec<_> {
        (0..1000u64)
            .map(|i| rig.file(&format!("{name}-{i:04}.txt"), 1024, seed + i))
            .collect()
    };
    let (first, second) = (batch("first", 0), batch("second", 1000));
    let in_flight = 64;
    let (engine, events) = rig.engine(|c| c.transfer.files = in_flight).await;
    let summary = Rig::upload_all(&engine, &first, 120, "the first upload").await;
    assert_eq!(summary.confirmed, first.len() as u64);
    let before = rig.store.traffic();
    let summary = Rig::upload_all(&engine, &second, 120, "the second upload").await;
    assert_eq!(summary.confirmed, (first.len() + second.len()) as u64);
    let after = rig.store.traffic();

    assert_no_failure(&events);
    let (opened, sent) = (
        after.connections - before.connections,
        after.requests - before.requests,
    );
    assert!(
        before.requests >= first.len() as u64 && sent >= second.len() as u64,
        "{} and {sent} requests",
        before.requests
    );
    assert!(
        before.connections <= 2 * in_flight as u64 && opened <= 8,
        "{} connections for the first {} requests, {opened} more for the next {sent} \
         ({in_flight} files in flight at most)",
        before.connections,
        before.requests,
    );
}

/// A store where each part takes a second whatever its size (a distant endpoint): twice the
/// parts move twice the bytes, so the engine opens more than the 8 it starts with — and never
/// more than the ceiling it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_in_flight_widen_while_more_move_more_and_stop_at_the_ceiling() {
    let rig = Rig::start(|_| {}).await;
    let files = [rig.file("far.bin", 24 * PART, 5)];
    let slow = rig.store.add(
        Rule::new(Action::Latency(Duration::from_secs(1)))
            .method("PUT")
            .target("partNumber="),
    );
    // A ceiling of 12, the file's own limit left at 16: only the ceiling stops the doubling
    // from 8 at 12.
    let (engine, events) = rig.engine(|c| c.transfer.parts = 12).await;
    let summary = Rig::upload_all(&engine, &files, 90, "the upload").await;

    assert_eq!(summary.confirmed, 1);
    assert_eq!(slow.applied(), 24, "every part was held");
    let most = rig.store.traffic().most_at_once;
    assert!(
        (9..=12).contains(&most),
        "{most} requests at once: more than the 8 parts it starts with, at most its ceiling of 12"
    );
    rig.assert_arrived_once(&engine, &events, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrower_limits_set_while_uploading_hold_for_the_parts_still_to_send() {
    let rig = Rig::start(|_| {}).await;
    let files = [rig.file("live.bin", 40 * PART, 11)];
    let slow = rig.store.add(
        Rule::new(Action::Latency(Duration::from_millis(500)))
            .method("PUT")
            .target("partNumber="),
    );
    let (engine, events) = rig.engine(|c| c.transfer.parts = 12).await;
    engine.enqueue(&[files[0].path.clone()]).await.unwrap();
    // While it uploads with parts wide: two parts at once from now on — the parts out come
    // back, and no others take their place.
    let narrow = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while rig.store.in_flight() < 6 {
            assert!(Instant::now() < deadline, "the parts never went wide");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut narrower = engine.transfer_settings();
        narrower.parts = 2;
        engine.set_transfer(&narrower).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while rig.store.in_flight() > 2 {
            let now = rig.store.in_flight();
            assert!(
                Instant::now() < deadline,
                "still {now} parts at once 30 s after a limit of 2"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.store.count_most_from_now();
        Instant::now()
    };
    let (summary, narrowed) =
        tokio::join!(within(120, "the upload", engine.run_until_idle()), narrow);

    assert_eq!(summary.unwrap().confirmed, 1);
    assert_eq!(slow.applied(), 40, "every part was held");
    let later = rig.store.seen();
    let later = later
        .iter()
        .filter(|s| s.target.contains("partNumber=") && s.at >= narrowed)
        .count();
    assert!(
        later >= 10,
        "only {later} parts were sent after the limit: nothing to see"
    );
    let most = rig.store.traffic().most_at_once;
    assert!(most <= 2, "{most} requests at once after the limit of 2");
    rig.assert_arrived_once(&engine, &events, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_and_truncated_answers_do_not_duplicate_objects_or_history() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("lost-complete.bin", 24 * MIB, 5),
        rig.file("cut-complete.bin", 24 * MIB, 6),
        rig.file("lost-put.txt", MIB, 7),
    ];
    let lost = rig.store.add(
        Rule::new(Action::DropAnswer)
            .method("POST")
            .target("lost-complete.bin?uploadId=")
            .nth(1),
    );
    let cut = rig.store.add(
        Rule::new(Action::Truncate(40))
            .method("POST")
            .target("cut-complete.bin?uploadId=")
            .nth(1),
    );
    let lost_put = rig.store.add(
        Rule::new(Action::DropAnswer)
            .method("PUT")
            .target("lost-put.txt")
            .nth(1),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 3);
    assert_eq!(
        (lost.applied(), cut.applied(), lost_put.applied()),
        (1, 1, 1)
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
    let completes = retries_of(&events, "CompleteMultipartUpload");
    assert_eq!(
        completes.len(),
        2,
        "each broken Complete retried: {completes:#?}"
    );
    assert!(completes.iter().all(|r| r.error.code == "network"));
    let puts = retries_of(&events, "PutObject");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].file_id, Some(files[2].id(&engine)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_500_and_503_are_retried_with_the_reason_shown() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("burst.bin", 40 * MIB, 8),
        rig.file("burst.txt", MIB, 9),
    ];
    let slow_down = rig.store.add(
        Rule::new(Action::s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ))
        .method("PUT")
        .target("burst.bin?partNumber=")
        .times(3),
    );
    let create = rig.store.add(
        Rule::new(Action::s3_error(
            500,
            "InternalError",
            "We encountered an internal error.",
        ))
        .method("POST")
        .target("burst.bin?uploads")
        .times(2),
    );
    let put = rig.store.add(
        Rule::new(Action::s3_error(503, "ServiceUnavailable", "Try again."))
            .method("PUT")
            .target("burst.txt")
            .times(3),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 90, "the upload").await;

    assert_eq!(summary.confirmed, 2);
    assert_eq!(
        (slow_down.applied(), create.applied(), put.applied()),
        (3, 2, 3)
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
    let parts = retries_of(&events, "UploadPart");
    assert_eq!(parts.len(), 3, "{parts:#?}");
    assert!(
        parts
            .iter()
            .all(|r| r.error.code == "storage" && r.error.message.contains("SlowDown")),
        "{parts:#?}"
    );
    let creates = retries_of(&events, "CreateMultipartUpload");
    assert_eq!(creates.len(), 2, "{creates:#?}");
    assert_consecutive(&creates);
    assert!(
        creates
            .iter()
            .all(|r| r.error.message.contains("InternalError"))
    );
    let puts = retries_of(&events, "PutObject");
    assert_eq!(puts.len(), 3, "{puts:#?}");
    assert_consecutive(&puts);
    assert!(
        puts.iter()
            .all(|r| r.error.message.contains("ServiceUnavailable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_answers_are_read_to_the_end() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("trickle.bin", 24 * MIB, 10),
        rig.file("trickle.txt", MIB, 11),
    ];
    let every = Duration::from_millis(30);
    let rules = [
        "trickle.bin?uploadId=",
        "trickle.bin?partNumber=1&",
        "trickle.txt",
    ]
    .map(|target| {
        rig.store.add(
            Rule::new(Action::Trickle { chunk: 16, every })
                .target(target)
                .nth(1),
        )
    });
    let (engine, events) = rig.engine(|_| {}).await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 2);
    assert!(rules.iter().all(|r| r.applied() == 1));
    assert!(
        retries(&events).is_empty(),
        "a slow answer is still an answer"
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
}

/// The engine's request timeout is what ends these, so this test lasts as long as that
/// timeout (60 s today) — both sides are faulted at once to pay it only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_never_come_are_given_up_on_and_retried() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("silent.txt", MIB, 12),
        rig.file("other.txt", MIB, 13),
    ];
    let store = rig.store.add(
        Rule::new(Action::Blackhole)
            .method("PUT")
            .target("silent.txt")
            .nth(1),
    );
    let api = rig.api.add(
        Rule::new(Action::Blackhole)
            .method("POST")
            .target("/api/v1/uploads")
            .nth(1),
    );
    // Given up after 3 s of silence (60 s by default); one confirmation per request.
    let (engine, events) = rig
        .engine(|c| {
            c.transfer.stall_timeout = std::time::Duration::from_secs(3);
            c.transfer.batch_confirmations = false;
        })
        .await;
    let summary = Rig::upload_all(&engine, &files, 60, "the upload").await;

    assert_eq!(summary.confirmed, 2);
    assert_eq!((store.applied(), api.applied()), (1, 1));
    assert_eq!(rig.api.count("POST", "/api/v1/uploads"), 3);
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files).await;
    let puts = retries_of(&events, "PutObject");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].file_id, Some(files[0].id(&engine)));
    assert_eq!(puts[0].error.code, "timeout");
    let confirmations: Vec<_> = retries(&events)
        .into_iter()
        .filter(|r| r.operation.contains("confirm"))
        .collect();
    assert_eq!(confirmations.len(), 1, "{confirmations:#?}");
    assert_eq!(confirmations[0].error.code, "network");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fault_that_never_heals_fails_the_file_with_a_reason_after_bounded_attempts() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("doomed.bin", 24 * MIB, 14),
        rig.file("doomed.txt", MIB, 15),
    ];
    rig.store.add(
        Rule::new(Action::ResetAfter(256 * 1024))
            .method("PUT")
            .target("doomed.bin?partNumber="),
    );
    rig.store.add(
        Rule::new(Action::s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ))
        .method("PUT")
        .target("doomed.txt"),
    );
    let file_attempts = 2;
    // Four parts of the file at a time at most: the bound on part requests below has teeth.
    let parallel = 4;
    let (engine, events) = rig
        .engine(|c| {
            c.transfer.max_attempts = file_attempts;
            c.transfer.parts = parallel;
            c.transfer.per_file_parts = parallel;
        })
        .await;
    let summary = Rig::upload_all(&engine, &files, 90, "giving up").await;

    assert_eq!((summary.confirmed, summary.failed), (0, 2));
    for (source, code) in files.iter().zip(["network", "storage"]) {
        let row = engine.journal().file(source.id(&engine)).unwrap().unwrap();
        assert_eq!(row.state, FileState::Failed, "{row:?}");
        assert_eq!(row.error_code.as_deref(), Some(code), "{row:?}");
        assert!(row.error_message.as_deref().is_some_and(|m| !m.is_empty()));
        let shown = failures(&events);
        let last = shown
            .iter()
            .rev()
            .find(|(id, _)| *id == row.id)
            .expect("the failure was shown");
        assert_eq!(last.1.as_ref().map(|e| e.code.as_str()), Some(code));
    }
    // The store's refusal carries its request id (what its support asks for): kept with the
    // failure and shown.
    let refused = engine
        .journal()
        .file(files[1].id(&engine))
        .unwrap()
        .unwrap();
    let message = refused.error_message.unwrap_or_default();
    assert!(
        message.contains("SlowDown") && message.ends_with("(request id proxy)"),
        "{message}"
    );
    let shown = failures(&events);
    let last = shown
        .iter()
        .rev()
        .find(|(id, _)| *id == refused.id)
        .unwrap();
    assert!(
        last.1
            .as_ref()
            .is_some_and(|e| e.message.contains("request id proxy")),
        "{last:?}"
    );
    let small = rig.store.count("PUT", "doomed.txt");
    let parts = rig.store.count("PUT", "doomed.bin?partNumber=");
    rig.store.clear();
    engine.transfer().resume(None).await.unwrap();
    let summary = within(60, "the upload after healing", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 2);
    rig.assert_arrived_once(&engine, &events, &files).await;
    // Bounded: each file attempt makes at most `max_attempts` requests per part in flight.
    let puts = retries_of(&events, "PutObject");
    let per_request = puts.first().expect("PutObject was retried").max_attempts as usize;
    assert_eq!(
        small,
        file_attempts as usize * per_request,
        "every attempt, no more"
    );
    assert!(
        (per_request..=file_attempts as usize * per_request * parallel).contains(&parts),
        "{parts} part requests"
    );
}

/// An outage longer than one request's retries (at most about 6 s of backoff) but shorter
/// than the file's attempts: the file waits for its next attempt, and what the user sees
/// meanwhile is "retrying", never "failed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_one_requests_retries_shows_retrying_not_failed() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("outage.txt", MIB, 17);
    let outage = rig.store.add(
        Rule::new(Action::s3_error(
            503,
            "ServiceUnavailable",
            "Down for maintenance.",
        ))
        .method("PUT")
        .lasting(Duration::from_secs(8)),
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
    let refused = outage.applied() as usize;
    let per_request = retries_of(&events, "PutObject")
        .first()
        .expect("PutObject was retried")
        .max_attempts as usize;
    assert!(
        refused >= per_request,
        "the outage outlasted one request's {per_request} attempts ({refused} refused)"
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_store_answer_fails_the_file_with_a_reason_and_loses_nothing() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("garbled.bin", 24 * MIB, 16);
    let garbled = rig.store.add(
        Rule::new(Action::respond(
            200,
            "application/xml",
            "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>ferry</Bu",
        ))
        .method("POST")
        .target("garbled.bin?uploads")
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
    let id = source.id(&engine);
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Failed, "{row:?}");
    assert_eq!(row.error_code.as_deref(), Some("protocol"));
    assert!(
        row.error_message
            .as_deref()
            .is_some_and(|m| m.contains("CreateMultipartUpload")),
        "{row:?}"
    );
    assert_eq!(failures(&events).len(), 1);

    engine.transfer().resume(None).await.unwrap();
    let summary = within(60, "the upload, resumed", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    rig.assert_arrived_once(&engine, &events, &[source]).await;
}

/// A Complete answered `NoSuchUpload` although nothing was completed (the upload lost on the
/// store's side): the engine must not take that for success. It looks at the object, finds it
/// missing, and sends the file again — leaving no multipart upload behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_the_store_no_longer_knows_is_checked_against_the_object() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("lost-upload.bin", 24 * MIB, 31);
    let gone = rig.store.add(
        Rule::new(Action::s3_error(
            404,
            "NoSuchUpload",
            "The specified multipart upload does not exist.",
        ))
        .method("POST")
        .target("lost-upload.bin?uploadId=")
        .nth(1),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();

    assert_eq!(summary.confirmed, 1, "{summary:?}");
    assert_eq!(gone.applied(), 1);
    assert_eq!(
        rig.store.count("POST", "lost-upload.bin?uploads"),
        2,
        "the upload began again"
    );
    rig.assert_arrived_once(&engine, &events, &[source]).await;
    let grant = engine.credentials().current().await.unwrap();
    let open = ferry_tests::StoreClient::new((*grant).clone())
        .list_uploads("")
        .await;
    assert!(
        !open.body.contains("<UploadId>"),
        "none left: {}",
        open.body
    );
}

/// The store refuses a request's credentials as expired (the grant ran out between signing
/// and arriving, or the store's clock says so): the engine fetches a new grant and tries that
/// request once more — and only once, so a store that refuses every grant cannot loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_answer_refreshes_the_grant_and_retries_once() {
    let rig = Rig::start(|_| {}).await;
    let files = [
        rig.file("expired-once.txt", MIB, 32),
        rig.file("expired-always.txt", MIB, 33),
    ];
    let expired = |target: &str| {
        Rule::new(Action::s3_error(
            400,
            "ExpiredToken",
            "The provided token has expired.",
        ))
        .method("PUT")
        .target(target)
    };
    let once = rig.store.add(expired("expired-once.txt").nth(1));
    let always = rig.store.add(expired("expired-always.txt"));
    let (engine, events) = rig.engine(|c| c.transfer.files = 1).await;
    engine
        .enqueue(std::slice::from_ref(&files[0].path))
        .await
        .unwrap();
    let grants_before = rig.api.count("POST", "/api/v1/grants");
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    assert_eq!(once.applied(), 1);
    assert_eq!(
        rig.api.count("POST", "/api/v1/grants") - grants_before,
        2,
        "the first grant, then one after the refusal"
    );
    assert_no_failure(&events);
    rig.assert_arrived_once(&engine, &events, &files[..1]).await;

    let grants_before = rig.api.count("POST", "/api/v1/grants");
    engine
        .enqueue(std::slice::from_ref(&files[1].path))
        .await
        .unwrap();
    within(60, "the refused upload", engine.run_until_idle())
        .await
        .unwrap();
    let row = engine
        .journal()
        .file(files[1].id(&engine))
        .unwrap()
        .unwrap();
    assert_eq!(row.state, FileState::Failed, "{row:?}");
    assert!(
        row.error_message
            .as_deref()
            .is_some_and(|m| m.contains("ExpiredToken")),
        "{row:?}"
    );
    assert_eq!(always.applied(), 2, "the request and its one retry");
    assert_eq!(rig.api.count("POST", "/api/v1/grants") - grants_before, 1);
}

/// The first create of `name`'s multipart upload takes effect and its answer is lost.
fn lose_first_create(rig: &Rig, name: &str) -> ferry_tests::proxy::RuleHandle {
    rig.store.add(
        Rule::new(Action::DropAnswer)
            .method("POST")
            .target(&format!("{name}?uploads"))
            .nth(1),
    )
}

/// The first look for open uploads is refused.
fn refuse_first_listing(rig: &Rig) -> ferry_tests::proxy::RuleHandle {
    rig.store.add(
        Rule::new(Action::s3_error(400, "InvalidRequest", "no listing now"))
            .method("GET")
            .target("uploads=")
            .nth(1),
    )
}

/// The multipart uploads open at the store for the engine's account, as the store lists them.
async fn open_uploads(engine: &ferry_engine::Engine) -> String {
    let grant = engine.credentials().current().await.unwrap();
    ferry_tests::StoreClient::new((*grant).clone())
        .list_uploads("")
        .await
        .body
}

/// The store begins a multipart upload but its answer is lost: the engine begins another one.
/// The first must not be left open in the store for ever (nobody would ever abort it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_begun_but_never_journaled_is_not_left_in_the_store() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("begun-twice.bin", 24 * MIB, 34);
    let lost = lose_first_create(&rig, "begun-twice.bin");
    let (engine, events) = rig.engine(|_| {}).await;
    let sources = [source];
    let summary = Rig::upload_all(&engine, &sources, 60, "the upload").await;
    assert_eq!(summary.confirmed, 1);
    assert_eq!(lost.applied(), 1);
    assert_eq!(
        rig.store.count("POST", "begun-twice.bin?uploads"),
        2,
        "begun twice"
    );
    rig.assert_arrived_once(&engine, &events, &sources).await;
    let open = open_uploads(&engine).await;
    assert!(
        !open.contains("<UploadId>"),
        "the upload whose answer was lost was aborted: {open}"
    );
}

/// As above, and the look for such uploads right after the second one is journaled fails
/// (or the engine is killed before it, as a crash trial found): the look is made again
/// before the upload completes, not given up with the first upload left open for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_begun_but_never_journaled_is_aborted_even_when_the_first_look_for_it_fails() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("begun-twice-unlisted.bin", 24 * MIB, 35);
    let lost = lose_first_create(&rig, "begun-twice-unlisted.bin");
    let unlisted = refuse_first_listing(&rig);
    let (engine, events) = rig.engine(|_| {}).await;
    let sources = [source];
    let summary = Rig::upload_all(&engine, &sources, 60, "the upload").await;
    assert_eq!(summary.confirmed, 1);
    assert_eq!((lost.applied(), unlisted.applied()), (1, 1));
    rig.assert_arrived_once(&engine, &events, &sources).await;
    let open = open_uploads(&engine).await;
    assert!(
        !open.contains("<UploadId>"),
        "the upload whose answer was lost was aborted: {open}"
    );
}

/// Waits (at most 30 s) until `rule` has matched a request, then `then` more.
async fn after_match(rule: &ferry_tests::proxy::RuleHandle, what: &str, then: Duration) {
    rule.wait_matched(what).await;
    tokio::time::sleep(then).await;
}

/// Begins a multipart upload of `name` at the engine account's prefix, as another client
/// with the same credentials would; its upload id.
async fn begin_beside(engine: &ferry_engine::Engine, name: &str) -> String {
    let grant = engine.credentials().current().await.unwrap();
    let key = format!("{}{name}", grant.prefix);
    ferry_tests::StoreClient::new((*grant).clone())
        .create_multipart(&key)
        .await
}

/// A create whose client was killed can reach the store's records after the restarted engine
/// first looked for strays (the store was slow; a crash trial under load left one open so).
/// The look is made again before Complete: here the stray appears right after the first look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_that_appears_after_the_first_look_is_aborted_before_complete() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("late-stray.bin", 24 * MIB, 37);
    let looked = rig
        .store
        .add(Rule::new(Action::Forward).method("GET").target("uploads="));
    let held = rig.store.add(
        Rule::new(Action::Latency(Duration::from_secs(3)))
            .method("PUT")
            .target("late-stray.bin?partNumber"),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let sources = [source];
    let late = async {
        after_match(&looked, "look for strays", Duration::ZERO).await;
        begin_beside(&engine, "late-stray.bin").await
    };
    let (summary, stray) = tokio::join!(Rig::upload_all(&engine, &sources, 60, "the upload"), late);
    assert_eq!(summary.confirmed, 1);
    assert!(held.matched() > 0);
    assert!(looked.matched() >= 2, "looked again before Complete");
    rig.assert_arrived_once(&engine, &events, &sources).await;
    let open = open_uploads(&engine).await;
    assert!(
        !open.contains(&stray),
        "the stray that appeared late was aborted: {open}"
    );
}

/// The sweep for uploads begun but never journaled leaves alone an upload begun at the same
/// key after the one it keeps: that one is someone else's (another device of the account,
/// another client with its credentials). Here the first sweep fails, so the sweep runs again
/// before Complete — seconds after another client began its own upload at the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_leaves_alone_an_upload_someone_else_began_at_the_key_later() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("shared-key.bin", 24 * MIB, 36);
    let lost = lose_first_create(&rig, "shared-key.bin");
    let unlisted = refuse_first_listing(&rig);
    // The parts wait at the proxy, so that the other client begins its upload in between.
    let held = rig.store.add(
        Rule::new(Action::Latency(Duration::from_secs(14)))
            .method("PUT")
            .target("shared-key.bin?partNumber"),
    );
    let (engine, events) = rig.engine(|_| {}).await;
    let sources = [source];
    let other = async {
        // The store dates an upload to the second; the sweep allows 5 s after the one kept
        // (a killed client's create can be taken late).
        after_match(&held, "part sent", Duration::from_secs(8)).await;
        begin_beside(&engine, "shared-key.bin").await
    };
    let (summary, theirs) =
        tokio::join!(Rig::upload_all(&engine, &sources, 60, "the upload"), other);
    assert_eq!(summary.confirmed, 1);
    assert_eq!((lost.applied(), unlisted.applied()), (1, 1));
    rig.assert_arrived_once(&engine, &events, &sources).await;
    let open = open_uploads(&engine).await;
    assert!(
        open.contains(&format!("<UploadId>{theirs}</UploadId>")),
        "the other client's upload is still open: {open}"
    );
    assert_eq!(
        open.matches("<UploadId>").count(),
        1,
        "the stray is aborted, theirs kept: {open}"
    );
}

/// OSS reports the CRC-64 of what it stored for every part; one that is not the CRC of the
/// bytes sent means the part is not what Ferry sent. The file is stopped with an integrity
/// error (nothing confirmed), and once the store tells the truth again a retry uploads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_whose_crc64_is_not_the_bytes_sent_is_never_taken_as_stored() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("crc.bin", 24 * MIB, 7);
    let lie = rig.store.add(
        Rule::new(Action::SetHeader {
            name: "x-oss-hash-crc64ecma".into(),
            value: "12345".into(),
        })
        .method("PUT")
        .target("crc.bin?partNumber=2&"),
    );
    let (engine, events) = rig
        .engine(|c| {
            c.grant.provider = Some(ferry_protocol::Provider::Oss);
        })
        .await;
    let id = engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap()[0];
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 0, "{summary:?}");
    assert!(lie.applied() >= 1);
    let shown = failures(&events);
    assert!(
        shown
            .iter()
            .any(|(file, e)| *file == id && e.as_ref().is_some_and(|e| e.code == "integrity")),
        "an integrity failure is shown: {shown:?}"
    );
    let page = rig.server.history("alice", &rig.password).await;
    assert!(
        page.items.iter().all(|r| !r.key.ends_with("crc.bin")),
        "nothing stored as the file: {:?}",
        page.items
    );

    lie.remove();
    engine.transfer().resume(Some(&[id])).await.unwrap();
    let summary = within(60, "the retried upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    // OSS grants carry the store's callback: the row is the provider's (no client checksum),
    // so the bytes and the one row are checked here rather than with `assert_arrived_once`.
    let page = rig.server.history("alice", &rig.password).await;
    let rows: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.key.ends_with("crc.bin"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, ferry_protocol::UploadStatus::Confirmed);
    let stored = rig
        .server
        .server
        .object_bytes(&rows[0].bucket, &rows[0].key)
        .await
        .unwrap();
    assert!(
        stored.as_deref() == Some(source.data.as_slice()),
        "stored as sent"
    );
}

/// With a callback asked for, a Complete that fails late (200 with an error document, as S3
/// and OSS may answer) is still a failure, tried again, not an object stored without an ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_complete_failure_is_seen_even_when_a_callback_was_asked_for() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("late.bin", 24 * MIB, 9);
    let late = rig.store.add(
        Rule::new(Action::s3_error(
            200,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ))
        .method("POST")
        .target("late.bin?uploadId=")
        .times(1),
    );
    let (engine, events) = rig
        .engine(|c| {
            c.grant.provider = Some(ferry_protocol::Provider::Oss);
        })
        .await;
    engine
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let summary = within(90, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(late.applied(), 1, "the late failure met the Complete");
    assert_eq!(summary.confirmed, 1, "{summary:?}: {:?}", failures(&events));
    let page = rig.server.history("alice", &rig.password).await;
    let row = page
        .items
        .iter()
        .find(|r| r.key.ends_with("late.bin"))
        .expect("the file's row");
    assert_eq!(row.size, 24 * MIB as u64);
    assert_eq!(
        rig.server
            .server
            .object_bytes(&row.bucket, &row.key)
            .await
            .unwrap(),
        Some(std::fs::read(&source.path).unwrap())
    );
}

/// A grant whose policy allows writes only: every HEAD is refused.
fn no_looking(rig: &Rig) -> ferry_tests::proxy::RuleHandle {
    rig.store
        .add(Rule::new(Action::s3_error(403, "AccessDenied", "writes only")).method("HEAD"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_may_not_look_still_never_replaces_an_object_where_the_store_can_refuse() {
    let rig = Rig::start(|_| {}).await;
    let heads = no_looking(&rig);
    let free = rig.file("free.bin", 17 * MIB, 40);
    let taken = rig.file("taken.bin", 17 * MIB, 41);
    let (engine, _) = rig.engine(|_| {}).await;
    let grant = engine.credentials().current().await.unwrap();
    let key = format!("{}taken.bin", grant.prefix);
    let theirs = ferry_tests::StoreClient::new((*grant).clone())
        .put(&key, b"theirs".to_vec())
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    let taken_path = taken.path.clone();
    let summary = Rig::upload_all(&engine, &[free, taken], 90, "the upload").await;
    assert!(heads.applied() >= 2, "both multipart uploads looked first");
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    let owner = engine.session().owner().unwrap();
    let row = engine
        .journal()
        .latest_for_path(&owner, &taken_path)
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.state, row.error_code.as_deref()),
        (FileState::Failed, Some("exists")),
        "the conditional Complete was refused: {row:?}"
    );
    let stored = rig.server.server.object_bytes(&grant.bucket, &key).await;
    assert_eq!(stored.unwrap().as_deref(), Some(&b"theirs"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_may_not_look_asks_before_writing_where_the_store_cannot_refuse() {
    use ferry_engine::conflict::OnConflict;
    let rig = Rig::start(|_| {}).await;
    no_looking(&rig);
    let file = rig.file("obs.txt", 1000, 42);
    let obs = ferry_protocol::Provider::Obs;
    let (engine, _) = rig.engine(|c| c.grant = ferry_tests::grant_in(obs)).await;
    let summary = Rig::upload_all(&engine, std::slice::from_ref(&file), 60, "the upload").await;
    assert_eq!(summary.confirmed, 0, "{summary:?}");
    let id = file.id(&engine);
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(row.error_code.as_deref(), Some("exists"), "{row:?}");
    assert!(
        row.error_message
            .as_deref()
            .unwrap_or_default()
            .contains("may be at the store"),
        "{row:?}"
    );
    assert_eq!(
        engine
            .decide(Some(&[id]), OnConflict::Overwrite)
            .await
            .unwrap(),
        1
    );
    let summary = within(60, "the decided upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
}

/// A small file rewritten in place (its size kept, its time put back) while its one PUT — sent
/// from the bytes read before — waits at the store's door: the check after the PUT finds the
/// bytes on disk are not those sent, and the file goes again — over the object its first PUT
/// stored, without asking, under the default rule. The store and the history end with what
/// the file holds now — on S3, which refuses a conditional PUT (3 PUTs: the first, the one
/// refused, the one that replaces), and on OBS, which is looked at first (2), where the first
/// PUT's callback recorded the old bytes.
async fn a_small_file_rewritten_while_its_put_is_on_its_way_is_sent_again_with_its_new_bytes(
    provider: ferry_protocol::Provider,
    puts: usize,
) {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("rewritten-small.bin", 32 * 1024, 38);
    let held = rig.store.add(
        Rule::new(Action::Latency(Duration::from_secs(2)))
            .method("PUT")
            .target("rewritten-small.bin")
            .times(1),
    );
    // Under the default rule ("ask"): the first PUT stores the old bytes, which are the
    // file's own — the next try replaces them without asking.
    let (engine, events) = rig
        .engine(|c| c.grant = ferry_tests::grant_in(provider))
        .await;
    let path = source.path.clone();
    let rewrite = async {
        after_match(&held, "the first PUT", Duration::ZERO).await;
        let time = std::fs::metadata(&path).unwrap().modified().unwrap();
        let now = ferry_tests::bytes(32 * 1024, 39);
        std::fs::write(&path, &now).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(time).unwrap();
        now
    };
    let sources = std::slice::from_ref(&source);
    let (summary, now) = tokio::join!(Rig::upload_all(&engine, sources, 60, "the upload"), rewrite);
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    assert_eq!(held.applied(), 1);
    // Sent again: the object of the first PUT is found to be the file's own, and replaced.
    assert_eq!(
        rig.store.count("PUT", "rewritten-small.bin"),
        puts,
        "sent again"
    );
    let changed = retries(&events)
        .iter()
        .any(|r| r.error.code == "file_changed");
    assert!(changed, "said why it went again: {:#?}", retries(&events));
    assert!(failures(&events).is_empty(), "{:#?}", failures(&events));
    // The history has the old bytes' PUT as stored only (on OBS confirmed by its callback,
    // under an upload id of its own), and, newest, the new ones confirmed; the store holds the
    // new ones.
    let page = rig.server.history("alice", &rig.password).await;
    let confirmed: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.status == ferry_protocol::UploadStatus::Confirmed)
        .collect();
    let old_confirmed = usize::from(provider == ferry_protocol::Provider::Obs);
    assert_eq!(confirmed.len(), 1 + old_confirmed, "{:#?}", page.items);
    assert_eq!(confirmed[0].etag, ferry_tests::md5_hex(&now));
    let stored = rig
        .server
        .server
        .object_bytes(&confirmed[0].bucket, &confirmed[0].key)
        .await
        .unwrap();
    assert!(
        stored.as_deref() == Some(now.as_slice()),
        "the new bytes are stored"
    );
    assert_ne!(source.data, now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_rewritten_while_its_put_is_on_its_way_is_sent_again_with_its_new_bytes_s3() {
    a_small_file_rewritten_while_its_put_is_on_its_way_is_sent_again_with_its_new_bytes(
        ferry_protocol::Provider::S3,
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_rewritten_while_its_put_is_on_its_way_is_sent_again_with_its_new_bytes_obs() {
    a_small_file_rewritten_while_its_put_is_on_its_way_is_sent_again_with_its_new_bytes(
        ferry_protocol::Provider::Obs,
        2,
    )
    .await;
}

/// A write of `source` (the request `held` keeps the answer of) taken effect at the store,
/// its engine stopped before the answer came (closed, as a killed run would be), `between`
/// done to the file, and a new engine on the same data dir run until idle (at the default
/// rule: an object of someone else's at the key would be asked about). Checks that the file
/// as it now is is there: a confirmed history row with its ETag, the journal's row confirmed,
/// its bytes stored, no failure shown, no multipart upload left open. Gives the bytes the new
/// engine sent to the store and the key's history rows (on OBS the first write is confirmed by
/// the store's callback, with no checksum — so not `assert_arrived_once`).
async fn stopped_after_its_write_took_effect(
    rig: &Rig,
    provider: ferry_protocol::Provider,
    source: &super::Source,
    held: ferry_tests::proxy::RuleHandle,
    between: impl FnOnce() -> super::Source,
) -> (u64, Vec<ferry_protocol::UploadRecord>) {
    let dialect = |c: &mut ferry_engine::EngineConfig| c.grant = ferry_tests::grant_in(provider);
    let (first, _) = rig.engine(dialect).await;
    first
        .enqueue(std::slice::from_ref(&source.path))
        .await
        .unwrap();
    let running = first.run_until_idle();
    tokio::pin!(running);
    tokio::select! {
        done = &mut running => panic!("finished with its write held: {done:?}"),
        () = held.wait_matched("the write") => {}
    }
    // The write has taken effect once the store holds the object.
    let grant = first.credentials().current().await.unwrap();
    let key = format!("{}{}", grant.prefix, source.name());
    let stored = || rig.server.server.object_bytes(&grant.bucket, &key);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored().await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the write never took effect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (Its run is not polled again: the engine's tasks end with it.)
    first.close().await;
    let source = between();

    let sent_before = rig.store.traffic().bytes_up;
    let (again, events) = rig.engine(dialect).await;
    let summary = within(60, "the next run", again.run_until_idle())
        .await
        .unwrap();
    let failed = failures(&events);
    assert_eq!(summary.confirmed, 1, "{summary:?}: {failed:#?}");
    assert!(failed.is_empty(), "{failed:#?}");
    let sent = rig.store.traffic().bytes_up - sent_before;
    let page = rig.server.history("alice", &rig.password).await;
    let suffix = format!("/{}", source.name());
    let rows: Vec<_> = page
        .items
        .into_iter()
        .filter(|r| r.key.ends_with(&suffix))
        .collect();
    let etag = ferry_tests::expected_etag(&source.data, super::THRESHOLD, PART);
    assert!(
        rows.iter()
            .any(|r| r.etag == etag && r.status == ferry_protocol::UploadStatus::Confirmed),
        "a confirmed row with the file's ETag {etag}: {rows:#?}"
    );
    let row = again.journal().file(source.id(&again)).unwrap().unwrap();
    assert_eq!(row.state, FileState::Confirmed, "{row:?}");
    assert!(stored().await.unwrap().as_deref() == Some(source.data.as_slice()));
    let api = rig.server.login("alice", &rig.password).await;
    let open = ferry_tests::StoreClient::new(api.grant().await)
        .list_uploads("")
        .await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(
        !open.body.contains("<UploadId>"),
        "no multipart upload is left open: {}",
        open.body
    );
    (sent, rows)
}

/// The engine stops while its Complete has taken effect and the answer has not come back; the
/// next engine finds its upload gone and the file's own bytes at the key. It records the file
/// as uploaded without sending a part again and without asking about the object — on a store
/// that refuses conditional writes (S3) and on one that is looked at instead (OBS).
async fn a_complete_that_took_effect_before_the_engine_stopped_is_not_sent_again(
    provider: ferry_protocol::Provider,
) {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("completed.bin", 24 * MIB, 41);
    let held = rig.store.add(
        Rule::new(Action::HoldAnswer)
            .method("POST")
            .target("completed.bin?uploadId=")
            .nth(1),
    );
    let (sent, rows) =
        stopped_after_its_write_took_effect(&rig, provider, &source, held, || source.clone()).await;
    assert!(sent < MIB as u64, "{sent} bytes sent to the store again");
    assert_eq!(rows.len(), 1, "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_that_took_effect_before_the_engine_stopped_is_not_sent_again_s3() {
    a_complete_that_took_effect_before_the_engine_stopped_is_not_sent_again(
        ferry_protocol::Provider::S3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_that_took_effect_before_the_engine_stopped_is_not_sent_again_obs() {
    a_complete_that_took_effect_before_the_engine_stopped_is_not_sent_again(
        ferry_protocol::Provider::Obs,
    )
    .await;
}

/// The same with a file sent in one PUT, on a store that cannot refuse to replace (OBS: the
/// key is looked at first): the object there holds the file's very bytes, and the next engine
/// takes it as the file's upload — nothing sent again, nobody asked whose it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_took_effect_before_the_engine_stopped_is_taken_as_it_is_obs() {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("put.bin", 3 * MIB, 42);
    let held = rig.store.add(
        Rule::new(Action::HoldAnswer)
            .method("PUT")
            .target("put.bin")
            .nth(1),
    );
    let provider = ferry_protocol::Provider::Obs;
    let (sent, rows) =
        stopped_after_its_write_took_effect(&rig, provider, &source, held, || source.clone()).await;
    assert!(sent < MIB as u64, "{sent} bytes sent to the store again");
    assert_eq!(rows.len(), 1, "{rows:#?}");
}

/// The engine stops while its Complete has taken effect, and the file is then written again
/// (another size, another time) before the next run: the object at the key is the file's own
/// earlier bytes, so the next engine replaces it with the file as it now is — without asking
/// whose it is (the default rule asks about anyone else's) — on S3 and on OBS.
async fn a_file_changed_after_its_complete_took_effect_replaces_its_own_object(
    provider: ferry_protocol::Provider,
) {
    let rig = Rig::start(|_| {}).await;
    let source = rig.file("rewritten.bin", 24 * MIB, 43);
    let held = rig.store.add(
        Rule::new(Action::HoldAnswer)
            .method("POST")
            .target("rewritten.bin?uploadId=")
            .nth(1),
    );
    let rewrite = || rig.file("rewritten.bin", 20 * MIB, 44);
    let (sent, _) =
        stopped_after_its_write_took_effect(&rig, provider, &source, held, rewrite).await;
    assert!(sent >= 20 * MIB as u64, "the new bytes went: {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_its_complete_took_effect_replaces_its_own_object_s3() {
    a_file_changed_after_its_complete_took_effect_replaces_its_own_object(
        ferry_protocol::Provider::S3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_its_complete_took_effect_replaces_its_own_object_obs() {
    a_file_changed_after_its_complete_took_effect_replaces_its_own_object(
        ferry_protocol::Provider::Obs,
    )
    .await;
}
