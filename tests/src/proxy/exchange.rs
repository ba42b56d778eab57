//! The proxy's connections: accept clients, read each request head, decide its action, and
//! carry the action out against an upstream connection that lives as long as both sides keep
//! theirs alive. A request's body goes up while its answer comes down, so an upstream that
//! answers early (before reading the whole body) is relayed faithfully.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::wire::{self, Fail, Outlet, Request};
use super::{Action, Canned, IO_TIMEOUT, Shared};

/// Read buffer per direction.
const BUFFER: usize = 64 * 1024;
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One side of a proxied connection.
struct Side {
    input: BufReader<OwnedReadHalf>,
    output: OwnedWriteHalf,
}

impl Side {
    fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Self {
            input: BufReader::with_capacity(BUFFER, read),
            output: write,
        }
    }

    /// Whether an idle connection was closed by its peer (or holds bytes nobody asked for), so
    /// it must not carry the next request.
    fn is_stale(&self) -> bool {
        if !self.input.buffer().is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(
            self.input.get_ref().try_read(&mut probe),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }
}

/// What happens to the client's connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
    Reset,
}

/// How a forwarded request and its answer are shaped.
#[derive(Debug, Clone, Default)]
struct Plan {
    reset_after: Option<u64>,
    stall: Option<(u64, Duration)>,
    truncate: Option<u64>,
    drop_answer: bool,
    trickle: Option<(usize, Duration)>,
    set_header: Option<(String, String)>,
}

/// Accepts clients until the task is aborted; aborting it ends every connection too.
pub(super) async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve(Side::new(stream), shared.clone()));
                }
                // Out of descriptors, say: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(mut client: Side, shared: Arc<Shared>) {
    let mut upstream: Option<Side> = None;
    let next = loop {
        let raw = match wire::read_head(&mut client.input).await {
            Ok(Some(raw)) => raw,
            Ok(None) | Err(_) => break Next::Close,
        };
        let Ok(request) = wire::parse_request(raw) else {
            break Next::Close;
        };
        let (action, index) = shared.decide(&request.method, &request.target);
        let handled = {
            let _counted = AtOnce::enter(&shared);
            handle(&shared, &mut client, &mut upstream, &request, action, index).await
        };
        match handled {
            Next::KeepAlive if !request.close => continue,
            Next::KeepAlive => break Next::Close,
            other => break other,
        }
    };
    if next == Next::Reset
        && let Ok(stream) = client.input.into_inner().reunite(client.output)
    {
        // A zero linger makes the close an RST, as a broken link looks to the client.
        let _ = stream.set_zero_linger();
    }
}

/// Counts a request as being handled while it lives.
struct AtOnce<'a>(&'a Shared);

impl<'a> AtOnce<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.at_once.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_at_once.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for AtOnce<'_> {
    fn drop(&mut self) {
        self.0.at_once.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    shared: &Shared,
    client: &mut Side,
    upstream: &mut Option<Side>,
    request: &Request,
    action: Action,
    index: Option<usize>,
) -> Next {
    let held = matches!(action, Action::HoldAnswer);
    let plan = match action {
        Action::Respond(canned) => return answer(shared, client, request, &canned, index).await,
        Action::Blackhole => {
            hold(&mut client.input).await;
            return Next::Close;
        }
        Action::Latency(delay) => {
            tokio::time::sleep(delay).await;
            Plan::default()
        }
        Action::Forward => Plan::default(),
        Action::ResetAfter(n) => Plan {
            reset_after: Some(n),
            ..Plan::default()
        },
        Action::Stall { after, pause } => Plan {
            stall: Some((after, pause)),
            ..Plan::default()
        },
        Action::Truncate(n) => Plan {
            truncate: Some(n),
            ..Plan::default()
        },
        Action::DropAnswer | Action::HoldAnswer => Plan {
            drop_answer: true,
            ..Plan::default()
        },
        Action::Trickle { chunk, every } => Plan {
            trickle: Some((chunk, every)),
            ..Plan::default()
        },
        Action::SetHeader { name, value } => Plan {
            set_header: Some((name, value)),
            ..Plan::default()
        },
    };
    if upstream.as_ref().is_some_and(Side::is_stale) {
        *upstream = None;
    }
    if upstream.is_none() {
        *upstream = connect(shared).await;
    }
    let Some(up) = upstream.as_mut() else {
        // No upstream to reach: the client sees its connection refused mid-way.
        return Next::Reset;
    };
    let next = exchange(shared, client, up, request, index, plan).await;
    if next != Next::KeepAlive {
        *upstream = None;
    }
    if held {
        hold(&mut client.input).await;
        return Next::Close;
    }
    next
}

async fn connect(shared: &Shared) -> Option<Side> {
    let addr = shared.upstream()?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    Some(Side::new(stream))
}

/// Sends the request up (shaped by `plan`) while relaying the answer down.
async fn exchange(
    shared: &Shared,
    client: &mut Side,
    up: &mut Side,
    request: &Request,
    index: Option<usize>,
    plan: Plan,
) -> Next {
    let Side {
        input: client_in,
        output: client_out,
    } = client;
    let Side {
        input: up_in,
        output: up_out,
    } = up;
    let send = async move {
        let mut out = Outlet::new(up_out, Some(&shared.bytes_up));
        let head = request.raw.len() as u64;
        out.cut_after = plan.reset_after.map(|n| head + n);
        out.stall = plan.stall.map(|(at, pause)| (head + at, pause));
        out.write(&request.raw).await?;
        wire::copy_body(client_in, &mut out, request.body).await?;
        if plan.reset_after.is_some() {
            // The body was shorter than the cut point: reset at its end.
            return Err(Fail::Cut);
        }
        Ok(())
    };
    let relay = relay(shared, up_in, client_out, &request.method, index, plan);
    tokio::pin!(send, relay);
    let mut body_sent = None;
    loop {
        tokio::select! {
            sent = &mut send, if body_sent.is_none() => match sent {
                Ok(()) => body_sent = Some(true),
                Err(Fail::Cut) => return Next::Reset,
                // The upstream stopped reading: an early answer may still come.
                Err(Fail::Write) => body_sent = Some(false),
                Err(Fail::Read | Fail::Malformed) => return Next::Close,
            },
            answered = &mut relay => {
                return match answered {
                    Ok(true) if body_sent == Some(true) => Next::KeepAlive,
                    _ => Next::Close,
                };
            }
        }
    }
}

/// Relays the answer to a request; `Ok(true)` when both connections can carry another
/// request.
async fn relay(
    shared: &Shared,
    from: &mut BufReader<OwnedReadHalf>,
    to: &mut OwnedWriteHalf,
    method: &str,
    index: Option<usize>,
    plan: Plan,
) -> Result<bool, Fail> {
    let mut discard = tokio::io::sink();
    let (to, counter): (&mut (dyn AsyncWrite + Unpin + Send), _) = if plan.drop_answer {
        (&mut discard, None)
    } else {
        (to, Some(&shared.bytes_down))
    };
    let mut out = Outlet::new(to, counter);
    out.trickle = plan.trickle;
    let mut response = loop {
        let raw = wire::read_head(from).await?.ok_or(Fail::Read)?;
        let response = wire::parse_response(raw, method)?;
        if (100..200).contains(&response.status) && response.status != 101 {
            // An interim answer (100 Continue): pass it on and wait for the real one.
            out.write(&response.raw).await?;
            continue;
        }
        break response;
    };
    if !plan.drop_answer {
        shared.record_status(index, response.status);
    }
    if let Some((name, value)) = &plan.set_header {
        response.raw = wire::with_header(&response.raw, name, value);
    }
    out.cut_after = plan
        .truncate
        .map(|n| out.sent() + response.raw.len() as u64 + n);
    out.write(&response.raw).await?;
    wire::copy_body(from, &mut out, response.body).await?;
    if plan.truncate.is_some() || plan.drop_answer {
        return Ok(false);
    }
    Ok(!response.close)
}

/// Answers `canned` without forwarding, after reading the request body so that the
/// connection stays usable.
async fn answer(
    shared: &Shared,
    client: &mut Side,
    request: &Request,
    canned: &Canned,
    index: Option<usize>,
) -> Next {
    let mut discard = tokio::io::sink();
    if wire::copy_body(
        &mut client.input,
        &mut Outlet::new(&mut discard, None),
        request.body,
    )
    .await
    .is_err()
    {
        return Next::Close;
    }
    let reason = reqwest::StatusCode::from_u16(canned.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Fault");
    let mut bytes = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\
         x-fault-proxy: canned\r\n\r\n",
        canned.status,
        canned.content_type,
        canned.body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&canned.body);
    shared.record_status(index, canned.status);
    let mut out = Outlet::new(&mut client.output, Some(&shared.bytes_down));
    match out.write(&bytes).await {
        Ok(()) => Next::KeepAlive,
        Err(_) => Next::Close,
    }
}

/// Reads and discards whatever the client sends, never answering, until it closes, stays
/// silent for [`IO_TIMEOUT`], or [`IO_TIMEOUT`] has passed in all.
async fn hold(input: &mut BufReader<OwnedReadHalf>) {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buffer = vec![0u8; BUFFER];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline.into(), input.read(&mut buffer)).await
        && n > 0
    {}
}
