//! A cloud credential service that is down, slow, failing then recovering, or answering
//! garbage, played by a loopback endpoint: each gives a clear `{code, message}` within the
//! broker's bounds (tries and time), transient failures are tried again, and the server keeps
//! serving.

use std::time::{Duration, Instant};

use ferry_protocol::{Grant, Role};
use ferry_server::BrokerKind;
use ferry_tests::{ApiClient, Reply as ApiReply};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::broker_cloud::{FakeCloud, Reply, SECRET, broker, sample, server};

fn aliyun_answer() -> String {
    let expiry = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    sample("aliyun-assume-role.json").replace("EXPIRATION", &expiry.format(&Rfc3339).unwrap())
}

async fn ask(client: &ApiClient) -> (ApiReply, Duration) {
    let started = Instant::now();
    let reply = client.post("/api/v1/grants", &json!({})).await;
    (reply, started.elapsed())
}

fn error_of(reply: &ApiReply, status: u16) -> (String, String) {
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(reply.status, status, "{body}");
    let message = body["message"].as_str().unwrap().to_owned();
    assert!(!message.contains(SECRET), "{message}");
    (body["code"].as_str().unwrap().to_owned(), message)
}

async fn still_serving(client: &ApiClient) {
    assert_eq!(client.get("/api/v1/sessions/current").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_is_down_gives_broker_unavailable_after_bounded_tries() {
    // A port that was free a moment ago: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = broker(
        BrokerKind::Aliyun,
        &format!("http://{closed}"),
        "cn-hangzhou",
        "b",
    );
    config.attempts = 3;
    let server = server(config, Duration::from_secs(900)).await;
    let client = server.user("alice", Role::User).await;
    let (reply, took) = ask(&client).await;
    let (code, message) = error_of(&reply, 503);
    assert_eq!(code, "broker_unavailable");
    assert!(message.contains("gave up after 3 tries"), "{message}");
    assert!(message.contains("could not be reached"), "{message}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    still_serving(&client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_broker_is_given_up_on_within_the_deadline() {
    let late = Reply::Late(
        Duration::from_secs(30),
        Box::new(Reply::json(200, &aliyun_answer())),
    );
    let fake = FakeCloud::start(vec![], Some(late)).await;
    let mut config = broker(BrokerKind::Aliyun, &fake.url(), "cn-hangzhou", "b");
    config.timeout = Duration::from_secs(1);
    config.attempts = 5;
    config.deadline = Duration::from_secs(4);
    let server = server(config, Duration::from_secs(900)).await;
    let client = server.user("alice", Role::User).await;
    let (reply, took) = ask(&client).await;
    let (code, message) = error_of(&reply, 503);
    assert_eq!(code, "broker_unavailable");
    assert!(message.contains("did not answer within 1 s"), "{message}");
    assert!(
        took < Duration::from_secs(6),
        "bounded by the 4 s deadline: {took:?}"
    );
    let tries = fake.received().len();
    assert!(
        (2..5).contains(&tries),
        "the deadline, not the 5 tries, ended it: {tries}"
    );
    still_serving(&client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_then_success_is_tried_again_and_vends() {
    let failing = Reply::json(500, r#"{"Code": "InternalError", "Message": "try later"}"#);
    let throttled = Reply::json(
        400,
        r#"{"Code": "Throttling.User", "Message": "slow down"}"#,
    );
    let fake = FakeCloud::start(
        vec![failing, throttled],
        Some(Reply::json(200, &aliyun_answer())),
    )
    .await;
    let first = server(
        broker(BrokerKind::Aliyun, &fake.url(), "cn-hangzhou", "b"),
        Duration::from_secs(900),
    )
    .await;
    let client = first.user("alice", Role::User).await;
    let (reply, _) = ask(&client).await;
    let grant: Grant = reply.json(201);
    assert_eq!(grant.access_key_id, "STS.NUgYrLnoC37mZZCNnAbezexample");
    let sent = fake.received();
    assert_eq!(sent.len(), 3, "500 and throttling are tried again");
    let nonces: Vec<_> = sent
        .iter()
        .map(|r| r.query("SignatureNonce").unwrap())
        .collect();
    assert!(
        nonces[0] != nonces[1] && nonces[1] != nonces[2],
        "each try is signed anew"
    );

    // A 500 with no readable body, every time: the tries end.
    let fake = FakeCloud::start(
        vec![],
        Some(Reply::Answer(
            502,
            "text/html",
            "<h1>Bad Gateway</h1>".into(),
        )),
    )
    .await;
    let mut config = broker(BrokerKind::Huawei, &fake.url(), "cn-north-4", "b");
    config.attempts = 2;
    let server = server(config, Duration::from_secs(900)).await;
    let client = server.user("bob", Role::User).await;
    let (reply, _) = ask(&client).await;
    let (code, message) = error_of(&reply, 503);
    assert_eq!(code, "broker_unavailable");
    assert!(
        message.contains("HTTP 502") && message.contains("Bad Gateway"),
        "{message}"
    );
    assert_eq!(fake.received().len(), 2);

    // Throttled on every try: a passing condition, not the cloud saying no (the engine gives
    // up on `broker_refused` for good, and tries `broker_unavailable` again later).
    let fake = FakeCloud::start(
        vec![],
        Some(Reply::json(
            400,
            r#"{"Code": "Throttling.User", "Message": "slow down"}"#,
        )),
    )
    .await;
    let mut config = broker(BrokerKind::Aliyun, &fake.url(), "cn-hangzhou", "b");
    config.attempts = 2;
    let throttled = crate::broker_cloud::server(config, Duration::from_secs(900)).await;
    let client = throttled.user("carol", Role::User).await;
    let (reply, _) = ask(&client).await;
    let (code, message) = error_of(&reply, 503);
    assert_eq!(code, "broker_unavailable", "{message}");
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_answers_are_clear_errors_and_not_grants() {
    let expired = sample("aliyun-assume-role.json").replace("EXPIRATION", "2015-04-09T11:52:19Z");
    let cases = [
        (
            BrokerKind::Aliyun,
            Reply::Answer(200, "text/html", "<html>captive portal</html>".into()),
            "not an AssumeRole answer",
        ),
        (
            BrokerKind::Aliyun,
            Reply::json(200, &expired),
            "expired already",
        ),
        (
            // Credentials without their key id: named, and not one secret byte shown.
            BrokerKind::Aliyun,
            Reply::json(
                200,
                &sample("aliyun-assume-role.json")
                    .replace("\"AccessKeyId\"", "\"KeyId\"")
                    .replace("EXPIRATION", "2099-01-01T00:00:00Z"),
            ),
            "missing field `AccessKeyId`",
        ),
        (
            BrokerKind::Huawei,
            Reply::json(
                201,
                r#"{"credential": {"access": "A", "secret": "huawei-secret-1234567890"}}"#,
            ),
            "missing field",
        ),
        (
            BrokerKind::Huawei,
            Reply::json(201, r#"{"credential": {"access": "A"}}"#),
            "not a securitytokens answer",
        ),
        (
            BrokerKind::Jdcloud,
            Reply::json(200, r#"{"requestId": "x", "result": {}}"#),
            "no credentials",
        ),
        (
            BrokerKind::Sts,
            Reply::xml(200, "<AssumeRoleResponse><Nope/></AssumeRoleResponse>"),
            "not an AssumeRoleResponse",
        ),
        (
            BrokerKind::Sts,
            Reply::Answer(200, "application/octet-stream", "x".repeat(300 * 1024)),
            "longer than",
        ),
    ];
    for (kind, garbage, says) in cases {
        let fake = FakeCloud::start(vec![], Some(garbage)).await;
        let ttl = Duration::from_secs(kind.min_duration_secs());
        let server = server(broker(kind, &fake.url(), "cn-north-1", "b"), ttl).await;
        let client = server.user("alice", Role::User).await;
        let (reply, _) = ask(&client).await;
        let (code, message) = error_of(&reply, 503);
        assert_eq!(code, "broker_unavailable", "{kind:?}");
        assert!(message.contains(says), "{kind:?}: {message}");
        for secret in [
            "wyLTSmsyPGP1ohvvw8xYgB29dlGI8KMiH2pKexample",
            "huawei-secret",
            "CAISkwJ1q6",
        ] {
            assert!(
                !message.contains(secret),
                "{kind:?}: a credential in {message}"
            );
        }
        assert_eq!(
            fake.received().len(),
            1,
            "{kind:?}: garbage is not tried again"
        );
        still_serving(&client).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_an_unusable_broker_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = ferry_server::ServeOptions::new(dir.path());
    options.broker = Some(broker(
        BrokerKind::Jdcloud,
        "http://127.0.0.1:9",
        "cn-north-1",
        "b",
    ));
    let err = ferry_server::Server::start(options)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at least 3600 s"), "{err}");
    assert!(!format!("{err:?}").contains(SECRET));
}
