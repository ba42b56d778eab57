//! A WAN link for the bench: a TCP proxy on loopback that holds every byte for half a round
//! trip in each direction and lets each connection carry at most a given rate each way, as a
//! distant cloud endpoint would. Plain threads: each direction of a connection is a reader
//! that stamps what it reads and a writer that lets it out when due and paced. A link also
//! counts the bytes clients send through it (what a resumed upload sends again).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes read (and paced) at a time.
const PIECE: usize = 16 * 1024;

/// The link's shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Half the round trip.
    pub(crate) one_way: Duration,
    /// Bytes per second, per connection and direction.
    pub(crate) rate: u64,
}

impl Shape {
    /// No delay and no cap: a link that only counts.
    pub(crate) const PASS: Shape = Shape {
        one_way: Duration::ZERO,
        rate: u64::MAX,
    };
}

/// A running link; it forwards to the upstream it is given and lives as long as the bench.
pub(crate) struct Link {
    pub(crate) addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    sent: Arc<AtomicU64>,
}

impl Link {
    /// Listens on a free loopback port; connections wait for [`Link::forward_to`].
    pub(crate) fn start(shape: Shape) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let target = upstream.clone();
        let sent: Arc<AtomicU64> = Arc::default();
        let counter = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Some(to) = *target.lock().unwrap_or_else(|p| p.into_inner()) else {
                    continue;
                };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect(to) {
                        connect(client, server, shape, &counter);
                    }
                });
            }
        });
        Ok(Self {
            addr,
            upstream,
            sent,
        })
    }

    /// Bytes clients have sent through the link so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Where connections go from now on.
    pub(crate) fn forward_to(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner()) = Some(upstream);
    }
}

/// Joins two sockets through the link, both ways.
fn connect(client: TcpStream, server: TcpStream, shape: Shape, sent: &Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_out), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let sent = sent.clone();
    let up = std::thread::spawn(move || pump(client, server_out, shape, Some(&sent)));
    pump(server, client_out, shape, None);
    let _ = up.join();
}

/// Carries `from` to `to`: each piece leaves `one_way` after it arrived, and no faster than
/// the rate allows; the end of one side ends the other's writing. What is read is added to
/// `count`, if given.
fn pump(mut from: TcpStream, mut to: TcpStream, shape: Shape, count: Option<&AtomicU64>) {
    // About one round trip of bytes in flight at the rate (the link's own buffer): a sender
    // that runs ahead is held back, as by a real path's window.
    let in_flight = (shape.rate as f64 * 2.0 * shape.one_way.as_secs_f64()) as usize / PIECE;
    let (pieces, due) = mpsc::sync_channel::<(Instant, Vec<u8>)>(in_flight.max(4));
    let mut writer_end = match to.try_clone() {
        Ok(stream) => stream,
        Err(_) => return,
    };
    let writer = std::thread::spawn(move || {
        let mut free_at = Instant::now();
        for (arrived, piece) in due {
            let at = (arrived + shape.one_way).max(free_at);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if writer_end.write_all(&piece).is_err() {
                break;
            }
            free_at = at + Duration::from_secs_f64(piece.len() as f64 / shape.rate as f64);
        }
        let _ = writer_end.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; PIECE];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(count) = count {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                if pieces.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(pieces);
    let _ = writer.join();
    let _ = to.flush();
}
