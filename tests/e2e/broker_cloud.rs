//! What the broker tests share: a loopback HTTP endpoint standing in for a cloud's credential
//! service (it records every request as received and answers from a script: a reply, a delay,
//! garbage), a server configured with a broker, and the runner of the vendors' SDK script
//! (`tests/brokers/sdk_requests.py`), which builds the signed request each SDK would send.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_server::{BrokerConfig, BrokerKind};
use ferry_tests::TestServer;
use serde_json::Value;

/// A request as the endpoint received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    /// Header names in lower case, values as sent, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded value of query parameter `name`.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        ferry_sign::query_pairs(Some(query))
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Status, content type and body.
    Answer(u16, &'static str, String),
    /// Waits this long, then answers.
    Late(Duration, Box<Reply>),
}

impl Reply {
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self::Answer(status, "application/json", body.to_owned())
    }

    pub(crate) fn xml(status: u16, body: &str) -> Self {
        Self::Answer(status, "text/xml", body.to_owned())
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Answered once the script is used up.
    last: Option<Reply>,
    received: Vec<Received>,
}

/// A cloud credential service on `127.0.0.1:0`, stopped when dropped.
pub(crate) struct FakeCloud {
    pub(crate) addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        script.replies.pop_front().or_else(|| script.last.clone())
    };
    let mut reply = reply.unwrap_or(Reply::Answer(500, "text/plain", "no reply scripted".into()));
    loop {
        match reply {
            Reply::Late(wait, then) => {
                tokio::time::sleep(wait).await;
                reply = *then;
            }
            Reply::Answer(status, content_type, body) => {
                return (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", content_type)],
                    body,
                )
                    .into_response();
            }
        }
    }
}

impl FakeCloud {
    /// Starts answering `replies` in turn, then `last` to every further request.
    pub(crate) async fn start(replies: Vec<Reply>, last: Option<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            last,
            received: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

/// A broker configuration of `kind` whose credential service is `endpoint`, with a fixed test
/// key (the secret is the one the SDK script gets too).
pub(crate) fn broker(kind: BrokerKind, endpoint: &str, region: &str, bucket: &str) -> BrokerConfig {
    let mut config = BrokerConfig::new(
        kind,
        region,
        bucket,
        format!("https://store.{region}.example.com"),
        format!("AK{}TESTKEY", kind.as_str().to_uppercase()),
        ferry_sign::Secret::new(SECRET),
    );
    config.endpoint = endpoint.to_owned();
    config.role_arn = Some(format!("role/{}-uploads", kind.as_str()));
    config.timeout = Duration::from_secs(5);
    config
}

/// The long-term secret of the test brokers.
pub(crate) const SECRET: &str = "tEsT/sEcReT+kEy=0123456789abcdef";

/// A server whose grants come through `config`, with its grant lifetime.
pub(crate) async fn server(config: BrokerConfig, grant_ttl: Duration) -> TestServer {
    TestServer::start_with(move |options| {
        options.grant_ttl = grant_ttl;
        options.broker = Some(config);
    })
    .await
}

/// Runs `tests/brokers/<script>` with `input` on stdin; its JSON answer.
pub(crate) async fn python(script: &str, input: &Value) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("brokers");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("python3 must be installed (cargo xtask test does): {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, input.to_string().as_bytes())
        .await
        .expect("write the input");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 120 s"))
        .expect("run the script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}); cargo xtask test installs the vendors' SDKs (pip: \
         aliyun-python-sdk-sts, huaweicloudsdkiam, jdcloud-sdk, moto)\nstdout: {stdout}\n\
         stderr: {stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// A documented sample answer from `tests/data/brokers/`.
pub(crate) fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/brokers")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
