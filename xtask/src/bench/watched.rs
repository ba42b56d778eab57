//! A watched folder (target B5): `ferry --json watch` running, then many small files written
//! into its folder at once. From the events ferry prints with their times: how long after it
//! took each file as stable (its `queued` event) its upload started (`uploading`), and how
//! long after the drop began each file started and was confirmed. Ferry takes a file once it
//! was modified at least 2 s ago and kept its size over two looks, so about 2 s of the
//! latter is the rule itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::{Process, Setup};

/// One drop of files into the folder.
struct Trial {
    /// Milliseconds from taken as stable to started, one per file.
    stable_to_started: Vec<f64>,
    /// Milliseconds the drop took (writing every file).
    writing: f64,
    /// Milliseconds from written to taken as stable, one per file: the n-th file written
    /// against the n-th taken (files settle in the order they were written).
    written_to_taken: Vec<f64>,
    /// Likewise, from written to started.
    written_to_started: Vec<f64>,
    /// Milliseconds from the drop's beginning to started, one per file.
    dropped_to_started: Vec<f64>,
    /// Milliseconds from the drop's beginning to confirmed, one per file.
    dropped_to_confirmed: Vec<f64>,
}

/// The trials of one run of the bench.
pub(crate) struct Watched {
    count: u64,
    size: u64,
    trials: Vec<Trial>,
}

/// A file's moments, Unix milliseconds.
#[derive(Default)]
struct Moments {
    queued: Option<i64>,
    uploading: Option<i64>,
    confirmed: Option<i64>,
}

/// Runs `reps` drops of `count` files of `size` bytes.
pub(crate) fn run(setup: &Setup, count: u64, size: u64, reps: usize) -> anyhow::Result<Watched> {
    let mut trials = Vec::new();
    for rep in 0..reps {
        let dir = setup.work.join(format!("watched-{rep}"));
        let trial =
            trial(setup, &dir, count, size).with_context(|| format!("watch trial {rep}"))?;
        eprintln!(
            "  watched folder #{rep}: stable → started p50 {:.0} ms, p95 {:.0} ms",
            percentile(&trial.stable_to_started, 50.0),
            percentile(&trial.stable_to_started, 95.0)
        );
        trials.push(trial);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Watched {
        count,
        size,
        trials,
    })
}

fn trial(setup: &Setup, dir: &Path, count: u64, size: u64) -> anyhow::Result<Trial> {
    let folder = dir.join("folder");
    std::fs::create_dir_all(&folder)?;
    let mut watcher = Process::start(
        Command::new(setup.bin.join("ferry"))
            .args(["--json", "watch"])
            .arg(&folder)
            .env("FERRY_DATA_DIR", dir.join("data"))
            .env("FERRY_SERVER", &setup.api)
            .env("FERRY_MEMORY_KEYCHAIN", "true")
            .env("FERRY_USER", "alice")
            .env("FERRY_PASSWORD", &setup.password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    // It says "watching" once signed in; the folder's watch is set up a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match watcher.stderr_line(wait) {
            Some(line) if line.starts_with("watching") => break,
            Some(_) => {}
            None => bail!("ferry watch did not start watching in 30 s"),
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let stdout = watcher.child().stdout.take().context("stdout")?;
    let (events_tx, events) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = events_tx.send(line);
        }
    });
    let dropped = unix_ms();
    let block = vec![b'x'; size as usize];
    let mut written = Vec::new();
    for i in 0..count {
        std::fs::write(folder.join(format!("dropped-{i:05}.bin")), &block)?;
        written.push(unix_ms());
    }
    let writing = (unix_ms() - dropped) as f64;
    let moments = collect(&events, count)?;
    Ok(Trial {
        writing,
        written_to_taken: by_rank(&written, &moments, |m| m.queued),
        written_to_started: by_rank(&written, &moments, |m| m.uploading),
        stable_to_started: spans(&moments, |m| Some((m.queued?, m.uploading?))),
        dropped_to_started: spans(&moments, |m| Some((dropped, m.uploading?))),
        dropped_to_confirmed: spans(&moments, |m| Some((dropped, m.confirmed?))),
    })
}

/// Milliseconds from each moment in `written` (in order) to the same-ranked moment `of` the
/// files.
fn by_rank(
    written: &[i64],
    moments: &HashMap<i64, Moments>,
    of: impl Fn(&Moments) -> Option<i64>,
) -> Vec<f64> {
    let mut then: Vec<i64> = moments.values().filter_map(of).collect();
    then.sort_unstable();
    let mut spans: Vec<f64> = written
        .iter()
        .zip(then)
        .map(|(w, t)| (t - w) as f64)
        .collect();
    spans.sort_by(f64::total_cmp);
    spans
}

/// Reads ferry's events until `count` files are confirmed (120 s at most).
fn collect(events: &mpsc::Receiver<String>, count: u64) -> anyhow::Result<HashMap<i64, Moments>> {
    let mut moments: HashMap<i64, Moments> = HashMap::new();
    let mut confirmed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while confirmed < count {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = events.recv_timeout(wait) else {
            bail!("{confirmed} of {count} files confirmed after 120 s");
        };
        let event: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
        let (Some("state"), Some(id), Some(at)) = (
            event["type"].as_str(),
            event["file_id"].as_i64(),
            event["at_ms"].as_i64(),
        ) else {
            continue;
        };
        let file = moments.entry(id).or_default();
        match event["state"].as_str() {
            Some("queued") => file.queued = Some(at),
            Some("uploading") => file.uploading = file.uploading.or(Some(at)),
            Some("confirmed") if file.confirmed.is_none() => {
                file.confirmed = Some(at);
                confirmed += 1;
            }
            Some("failed") => bail!("a dropped file failed: {line}"),
            _ => {}
        }
    }
    Ok(moments)
}

fn spans(moments: &HashMap<i64, Moments>, of: impl Fn(&Moments) -> Option<(i64, i64)>) -> Vec<f64> {
    let mut spans: Vec<f64> = moments
        .values()
        .filter_map(&of)
        .map(|(from, to)| (to - from) as f64)
        .collect();
    spans.sort_by(f64::total_cmp);
    spans
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Watched {
    /// The markdown section: p50 and p95 of each span, per trial.
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "### A watched folder: {} files of {} written into it at once\n\n\
             `ferry --json watch` running and signed in; times from the events it prints. \
             Ferry takes a file once it was modified at least 2 s ago and kept its size over \
             two looks, so about 2 s of \"dropped →\" is that rule. Milliseconds, p50 / p95 \
             over the files of each trial. \"writing\" is how long writing the files took; \
             \"written →\" pairs the n-th file written with the n-th taken or started.\n\n\
             | trial | writing | written → taken as stable | written → started | taken as stable → started | dropped → started | dropped → confirmed | files |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
            self.count,
            super::size_text(self.size)
        );
        let pair = |v: &[f64]| format!("{:.0} / {:.0}", percentile(v, 50.0), percentile(v, 95.0));
        for (n, t) in self.trials.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                n + 1,
                t.writing,
                pair(&t.written_to_taken),
                pair(&t.written_to_started),
                pair(&t.stable_to_started),
                pair(&t.dropped_to_started),
                pair(&t.dropped_to_confirmed),
                t.dropped_to_confirmed.len()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 10.0);
        assert_eq!(percentile(&values, 95.0), 19.0);
        assert_eq!(percentile(&values, 100.0), 20.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
