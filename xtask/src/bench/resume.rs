//! Resuming (target B4): `ferry upload` of the big file killed with SIGKILL once half of it has
//! been sent, then run again. The store is reached through a link that only counts what
//! clients send, so what the second run sends again is measured, not inferred; and how soon
//! the second run is sending file bytes (sign-in, grant, the store's part list, then parts).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::wan::Link;
use super::{Process, Setup, clients};

/// Bytes that count as the resumed run sending file bytes (more than its requests without
/// a body could add up to).
const STARTED: u64 = 256 << 10;

/// Parts in flight at most, set for these runs (ferry's default).
const PARTS: u64 = 16;

/// Ferry's part size for files up to 78 GiB (size / 10 000, at least 8 MiB).
const PART_SIZE: u64 = 8 << 20;

/// One kill and resume.
struct Trial {
    /// Bytes sent before the kill.
    killed_at: u64,
    /// Bytes sent by both runs beyond the file's size (part bytes sent twice, and every
    /// request's head).
    resent: u64,
    /// From starting the second run until it had sent [`STARTED`] bytes.
    started_secs: f64,
    /// The second run, start to exit.
    secs: f64,
}

/// The trials of one run of the bench.
pub(crate) struct Resume {
    size: u64,
    trials: Vec<Trial>,
}

/// Runs `reps` trials on a file of `size` bytes; `link` is the counting link the setup's
/// store is reached through.
pub(crate) fn run(setup: &Setup, link: &Link, size: u64, reps: usize) -> anyhow::Result<Resume> {
    let dir = setup.work.join("resume");
    let (file, _) = super::make_files(&dir, super::Case::Big(size))?;
    let mut trials = Vec::new();
    for rep in 0..reps {
        let data_dir = dir.join(format!("data-{rep}"));
        let trial = trial(setup, link, &file, &data_dir, size)
            .with_context(|| format!("resume trial {rep}"))?;
        eprintln!(
            "  resume #{rep}: killed after {} MiB, re-sent {:.1} MiB, sending again after {:.2} s",
            trial.killed_at >> 20,
            trial.resent as f64 / (1 << 20) as f64,
            trial.started_secs
        );
        trials.push(trial);
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Resume { size, trials })
}

fn trial(
    setup: &Setup,
    link: &Link,
    file: &Path,
    data_dir: &Path,
    size: u64,
) -> anyhow::Result<Trial> {
    let before = link.sent();
    kill_at_half(setup, link, file, data_dir, size)?;
    let killed_at = link.sent() - before;
    let _ = std::process::Command::new("sync").status();
    let (started_secs, secs) = resumed(setup, link, file, data_dir)?;
    Ok(Trial {
        killed_at,
        resent: (link.sent() - before).saturating_sub(size),
        started_secs,
        secs,
    })
}

/// The first run, killed with SIGKILL once half of the file went through the link; returns
/// once what it sent before dying has drained (at most 10 s).
fn kill_at_half(
    setup: &Setup,
    link: &Link,
    file: &Path,
    data_dir: &Path,
    size: u64,
) -> anyhow::Result<()> {
    let before = link.sent();
    let mut first = Process::start(ferry(setup, file, data_dir).stdout(Stdio::null()))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while link.sent() - before < size / 2 {
        if first.child().try_wait()?.is_some() {
            bail!(
                "the first run ended before half of the file was sent: {}",
                first.stderr()
            );
        }
        if Instant::now() > deadline {
            bail!("the first run did not send half of the file in 300 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    first.child().kill()?; // SIGKILL
    first.child().wait()?;
    // What the killed run had written into its sockets still drains through the link: it
    // counts as the first run's, not as the second's.
    let mut last = link.sent();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let now = link.sent();
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// The second run: how soon it was sending file bytes again, and how long it took, seconds.
fn resumed(setup: &Setup, link: &Link, file: &Path, data_dir: &Path) -> anyhow::Result<(f64, f64)> {
    let resumed_from = link.sent();
    let started = Instant::now();
    let mut second = Process::start(ferry(setup, file, data_dir).stdout(Stdio::null()))?;
    let mut sending = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if sending.is_none() && link.sent() - resumed_from >= STARTED {
            sending = Some(started.elapsed().as_secs_f64());
        }
        if let Some(status) = second.child().try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            bail!("the resumed run did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the resumed run failed ({status}): {}", second.stderr());
    }
    Ok((sending.unwrap_or(secs), secs))
}

fn ferry(setup: &Setup, file: &Path, data_dir: &Path) -> std::process::Command {
    let mut command = clients::ferry(setup, file, data_dir);
    command.env("FERRY_PARTS", PARTS.to_string());
    command
}

impl Resume {
    /// The markdown section: each trial, and the bound B4 sets.
    pub(crate) fn markdown(&self) -> String {
        let (parts, part_size) = (PARTS, PART_SIZE);
        let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
        let mut out = format!(
            "### Resuming: ferry killed (SIGKILL) at half of {}, then run again\n\n\
             Through a link that counts what the client sends. \"Re-sent\" is everything both \
             runs sent beyond the file's size: parts sent twice and every request's head. The \
             bound is parts in flight at most × part size ({parts} × {} MiB = {} MiB). \
             \"Sending again\" is from starting the second run until {} KiB more had left it \
             (sign-in, grant, the store's part list, then parts).\n\n\
             | trial | killed after MiB | re-sent MiB | bound MiB | sending again after s | second run s |\n\
             |---|---:|---:|---:|---:|---:|\n",
            super::size_text(self.size),
            part_size >> 20,
            mib(parts * part_size),
            STARTED >> 10,
        );
        for (n, t) in self.trials.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} |",
                n + 1,
                mib(t.killed_at),
                mib(t.resent),
                mib(parts * part_size),
                t.started_secs,
                t.secs
            );
        }
        out
    }
}
