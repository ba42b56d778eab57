//! The credential storm: grants that live 2 s, four files uploading at once, bandwidth limited
//! so that the uploads span several grant lifetimes. Nobody may see a failure, every file must
//! arrive once and intact, and the engine must ask for grants about as rarely as the refresh
//! rule allows (one refresh at a time, shared by every upload), counted where the requests pass:
//! in a proxy in front of the app server.

use std::time::{Duration, Instant};

use ferry_engine::events::Event;
use ferry_tests::proxy::{Action, Rule};
use ferry_tests::within;

use crate::faults::{MIB, Rig, assert_no_failure, retries};

const TTL: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_uploads_under_two_second_grants_see_no_failure_and_few_grant_requests() {
    let rig = Rig::start(|o| o.grant_ttl = TTL).await;
    let files: Vec<_> = (0..4)
        .map(|i| rig.file(&format!("storm-{i}.bin"), 32 * MIB, 40 + i))
        .collect();
    // A real app server takes a while to answer; concurrent refreshes would pile up here.
    rig.api.add(
        Rule::new(Action::Latency(Duration::from_millis(200)))
            .method("POST")
            .target("/api/v1/grants"),
    );
    let (engine, events) = rig
        .engine(|c| {
            c.transfer.files = 4;
            c.transfer.bandwidth = Some(16 * MIB as u64);
        })
        .await;
    let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    let started = Instant::now();
    engine.enqueue(&paths).await.unwrap();
    let summary = within(120, "the uploads", engine.run_until_idle())
        .await
        .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(summary.confirmed, 4);
    assert_no_failure(&events);
    let grant_times: Vec<Instant> = rig
        .api
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.target.contains("/api/v1/grants"))
        .map(|s| s.at)
        .collect();
    let grants = grant_times.len() as u64;
    // One refresh at a time, shared by all: a grant is not asked for again before the one
    // just fetched is due (half its lifetime), so grant requests never come in bunches.
    let closest = grant_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(TTL);
    // A grant is replaced at half its lifetime, so a run of `elapsed` needs at least this many.
    let minimum = (elapsed.as_secs_f64() / (TTL.as_secs_f64() / 2.0)).floor() as u64 + 1;
    let refreshed = events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::CredentialsRefreshed { .. }))
        .count() as u64;
    let retried = retries(&events);
    let rejected = rig
        .store
        .seen()
        .iter()
        .filter(|s| s.status == Some(403))
        .count();
    let summary = format!(
        "{:.1} s, {grants} grant requests (at most {minimum} with one per half-life), \
         {refreshed} refreshes, closest two {closest:?} apart, {rejected} store requests \
         refused, {} retries {:?}",
        elapsed.as_secs_f64(),
        retried.len(),
        retried
            .iter()
            .map(|r| format!("{}:{}", r.operation, r.error.code))
            .collect::<Vec<_>>()
    );
    ferry_tests::figures("credential_storm", &summary);
    assert!(
        grants >= 3,
        "the uploads outlived several grants ({grants})"
    );
    assert!(
        grants <= minimum + 2,
        "{grants} grant requests in {elapsed:?}; about {minimum} are needed"
    );
    assert!(
        closest >= TTL / 4,
        "grant requests {closest:?} apart: refreshes are not shared"
    );
    assert_eq!(refreshed, grants, "every grant request was one refresh");
    assert_eq!(engine.credentials().refresh_count(), grants);
    rig.assert_arrived_once(&engine, &events, &files).await;
}
