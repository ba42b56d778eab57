//! A fault-injecting HTTP/1.1 proxy for the tests: it listens on `127.0.0.1:0`, forwards every
//! connection to an upstream address, and applies the [`Rule`]s a test sets (reset the
//! connection mid-body, stall, add latency, answer a canned error, truncate, trickle or drop the
//! answer, never answer). It understands HTTP/1.1 framing (Content-Length and chunked bodies,
//! keep-alive), so faults hit one request of a connection and the others pass untouched, as a
//! flaky network or a misbehaving server would do it.
//!
//! Rules can be added and removed while traffic flows ("fail for 3 s, then heal"), and the
//! proxy counts what it saw: requests per rule, requests and bytes in each direction, and a log
//! of every request with its answer's status, so a test can assert how many attempts a client
//! made. Every wait inside the proxy is bounded (see [`IO_TIMEOUT`]); dropping the proxy ends
//! all its connections.

mod exchange;
#[cfg(test)]
mod tests;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

/// The longest the proxy waits for any single read or write, and how long it holds a
/// connection it never answers. Longer than the engine's own timeouts (60 s), so that the
/// client, not the proxy, is the one that gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(90);

/// What the proxy does with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Pass it on and relay the answer (what happens without a rule).
    Forward,
    /// Forward the head and this many bytes of the request body (all of it, if shorter), then
    /// reset the client's connection (RST) and drop the upstream one: a link that breaks
    /// mid-part.
    ResetAfter(u64),
    /// Forward `after` bytes of the request body, stop reading and forwarding for `pause`,
    /// then go on.
    Stall {
        /// Body bytes forwarded before the pause.
        after: u64,
        /// How long nothing moves.
        pause: Duration,
    },
    /// Wait this long before forwarding the request.
    Latency(Duration),
    /// Answer this without forwarding (the request body is read and discarded first, so the
    /// connection stays usable).
    Respond(Canned),
    /// Forward, then relay the answer's head and this many bytes of its body, and close.
    Truncate(u64),
    /// Forward and let the upstream answer in full, but close the client's connection without
    /// relaying any of it: the request took effect and its answer was lost.
    DropAnswer,
    /// Forward and let the upstream answer in full, relay none of it, and hold the client's
    /// connection open (until the client closes it or [`IO_TIMEOUT`] passes): the request took
    /// effect and its client is still waiting — as a client killed or stopped then would be.
    HoldAnswer,
    /// Forward, then relay the answer (head included) `chunk` bytes at a time, one chunk per
    /// `every`.
    Trickle {
        /// Bytes per chunk.
        chunk: usize,
        /// Time between chunks.
        every: Duration,
    },
    /// Read and discard the request and anything after it, never answer, hold the connection
    /// open (until the client closes it or [`IO_TIMEOUT`] passes).
    Blackhole,
    /// Forward, then relay the answer with this header set to this value (replacing it, or
    /// added): a store that misreports what it stored.
    SetHeader {
        /// The header's name.
        name: String,
        /// Its new value.
        value: String,
    },
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Canned {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Action {
    /// A canned answer with any body (a malformed one, say).
    pub fn respond(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::Respond(Canned {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        })
    }

    /// An S3 error answer, as stores send it (`<Error><Code>…`).
    pub fn s3_error(status: u16, code: &str, message: &str) -> Self {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>proxy</RequestId></Error>"
        );
        Self::respond(status, "application/xml", xml)
    }

    /// An app-server error answer (`{code, message}`).
    pub fn api_error(status: u16, code: &str, message: &str) -> Self {
        let json = serde_json::json!({ "code": code, "message": message }).to_string();
        Self::respond(status, "application/json", json)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::ResetAfter(_) => "reset",
            Self::Stall { .. } => "stall",
            Self::Latency(_) => "latency",
            Self::Respond(_) => "respond",
            Self::Truncate(_) => "truncate",
            Self::DropAnswer => "drop-answer",
            Self::HoldAnswer => "hold-answer",
            Self::Trickle { .. } => "trickle",
            Self::Blackhole => "blackhole",
            Self::SetHeader { .. } => "set-header",
        }
    }
}

/// When an [`Action`] applies: requests whose method and target (path and query) match, from
/// the `skip + 1`-th match on, `times` times (or always), while the rule lasts.
#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    target: Option<String>,
    skip: u64,
    times: Option<u64>,
    lasting: Option<Duration>,
    action: Action,
}

impl Rule {
    /// A rule applying `action` to every request.
    pub fn new(action: Action) -> Self {
        Self {
            method: None,
            target: None,
            skip: 0,
            times: None,
            lasting: None,
            action,
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose target (path and query, as sent) contains `fragment`.
    pub fn target(mut self, fragment: &str) -> Self {
        self.target = Some(fragment.to_owned());
        self
    }

    /// Let the first `n` matching requests pass.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Apply to `n` matching requests (after the skipped ones), then let everything pass.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Apply to the `n`-th matching request only (1-based).
    pub fn nth(self, n: u64) -> Self {
        self.skip(n.saturating_sub(1)).times(1)
    }

    /// The rule ends this long after it is added.
    pub fn lasting(mut self, duration: Duration) -> Self {
        self.lasting = Some(duration);
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.target.as_deref().is_none_or(|t| target.contains(t))
    }
}

/// A rule as the proxy holds it, with its counters.
#[derive(Debug)]
struct Installed {
    id: u64,
    rule: Rule,
    until: Option<Instant>,
    matched: AtomicU64,
    applied: AtomicU64,
}

/// A rule added to a running proxy: its counters, and a way to remove it.
#[derive(Debug, Clone)]
pub struct RuleHandle {
    installed: Arc<Installed>,
    shared: Arc<Shared>,
}

impl RuleHandle {
    /// Requests that matched the rule's method and target while it lasted (applied or not).
    pub fn matched(&self) -> u64 {
        self.installed.matched.load(Ordering::SeqCst)
    }

    /// Waits (at most 30 s) until the rule has matched a request; panics saying "no `what`"
    /// if none came.
    pub async fn wait_matched(&self, what: &str) {
        let started = Instant::now();
        while self.matched() == 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "no {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Requests the rule's action was applied to.
    pub fn applied(&self) -> u64 {
        self.installed.applied.load(Ordering::SeqCst)
    }

    /// Removes the rule: the network heals.
    pub fn remove(&self) {
        self.shared.rules().retain(|r| r.id != self.installed.id);
    }
}

/// A request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The action taken.
    pub action: &'static str,
    /// Status of the answer the client got, if one was relayed or canned.
    pub status: Option<u16>,
    /// When its head arrived.
    pub at: Instant,
}

/// Counts of what went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Client connections accepted.
    pub connections: u64,
    /// Requests seen.
    pub requests: u64,
    /// Bytes forwarded from clients to the upstream (heads and bodies).
    pub bytes_up: u64,
    /// Bytes relayed from the upstream, or canned, to clients (heads and bodies).
    pub bytes_down: u64,
    /// The most requests that were being handled at one moment.
    pub most_at_once: u64,
}

/// At most this many requests are kept in the log (counters go on counting).
const LOG_LIMIT: usize = 100_000;

/// What the accept loop and the connections share with the test.
#[derive(Debug, Default)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    rules: Mutex<Vec<Arc<Installed>>>,
    next_id: AtomicU64,
    log: Mutex<Vec<Seen>>,
    connections: AtomicU64,
    requests: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    /// Requests being handled now, and the most at one moment.
    at_once: AtomicU64,
    most_at_once: AtomicU64,
}

impl Shared {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Installed>>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn upstream(&self) -> Option<SocketAddr> {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Picks the action for a request and logs it. Every live rule counts every request it
    /// matches; the first rule (in the order added) whose window includes the request acts.
    fn decide(&self, method: &str, target: &str) -> (Action, Option<usize>) {
        let now = Instant::now();
        let mut chosen = None;
        self.rules().retain(|r| r.until.is_none_or(|u| now < u));
        for installed in self.rules().iter() {
            if !installed.rule.matches(method, target) {
                continue;
            }
            let n = installed.matched.fetch_add(1, Ordering::SeqCst) + 1;
            let rule = &installed.rule;
            let in_window = n > rule.skip && rule.times.is_none_or(|t| n <= rule.skip + t);
            if in_window && chosen.is_none() {
                installed.applied.fetch_add(1, Ordering::SeqCst);
                chosen = Some(rule.action.clone());
            }
        }
        let action = chosen.unwrap_or(Action::Forward);
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut log = self.log();
        let index = (log.len() < LOG_LIMIT).then(|| {
            log.push(Seen {
                method: method.to_owned(),
                target: target.to_owned(),
                action: action.name(),
                status: None,
                at: now,
            });
            log.len() - 1
        });
        (action, index)
    }

    fn record_status(&self, index: Option<usize>, status: u16) {
        if let Some(i) = index
            && let Some(seen) = self.log().get_mut(i)
        {
            seen.status = Some(status);
        }
    }
}

/// A running proxy. Dropping it stops it and closes every connection it holds.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on `127.0.0.1:0`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let proxy = Self::unconnected().await;
        proxy.set_upstream(upstream);
        proxy
    }

    /// Starts a proxy whose upstream is set later with [`Proxy::set_upstream`] (its address has
    /// to go into the configuration of the server it will front). Until then, connections are
    /// closed at once.
    pub async fn unconnected() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(exchange::accept(listener, shared.clone()));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// Where requests are forwarded from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(upstream);
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule after the existing ones.
    pub fn add(&self, rule: Rule) -> RuleHandle {
        let installed = Arc::new(Installed {
            id: self.shared.next_id.fetch_add(1, Ordering::SeqCst),
            until: rule.lasting.map(|d| Instant::now() + d),
            rule,
            matched: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        });
        self.shared.rules().push(installed.clone());
        RuleHandle {
            installed,
            shared: self.shared.clone(),
        }
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.shared.rules().clear();
    }

    /// What went through so far.
    pub fn traffic(&self) -> Traffic {
        let s = &self.shared;
        Traffic {
            connections: s.connections.load(Ordering::SeqCst),
            requests: s.requests.load(Ordering::SeqCst),
            bytes_up: s.bytes_up.load(Ordering::SeqCst),
            bytes_down: s.bytes_down.load(Ordering::SeqCst),
            most_at_once: s.most_at_once.load(Ordering::SeqCst),
        }
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> u64 {
        self.shared.at_once.load(Ordering::SeqCst)
    }

    /// Counts "the most at one moment" again from now (from the requests in flight now).
    pub fn count_most_from_now(&self) {
        let now = self.shared.at_once.load(Ordering::SeqCst);
        self.shared.most_at_once.store(now, Ordering::SeqCst);
        // A request that came in between is counted still.
        let now = self.shared.at_once.load(Ordering::SeqCst);
        self.shared.most_at_once.fetch_max(now, Ordering::SeqCst);
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.log().clone()
    }

    /// Requests seen with `method` whose target contains `fragment`.
    pub fn count(&self, method: &str, fragment: &str) -> usize {
        self.shared
            .log()
            .iter()
            .filter(|s| s.method == method && s.target.contains(fragment))
            .count()
    }
}
