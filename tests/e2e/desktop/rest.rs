//! How the desktop app rests when nobody uses it (the bench's target B6): over an idle spell,
//! the CPU time and memory of the app and the WebKit processes it started, read from `/proc`.
//! The figures are printed (and written as JSON to `FERRY_DESKTOP_REPORT` when the bench asks);
//! nothing here asserts a speed or a size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What one process looks like in `/proc`.
struct Proc {
    parent: u32,
    session: u32,
    name: String,
    /// User + system CPU, clock ticks.
    ticks: u64,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (name) state ppid pgrp session … utime stime …`: the name may hold spaces.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Proc {
        parent: number(1)? as u32,
        session: number(3)? as u32,
        name,
        ticks: number(11)? + number(12)?,
    })
}

fn all_processes() -> HashMap<u32, Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_proc(pid)?)))
        .collect()
}

/// The app (named `ferry-desktop`, in the session `leader` started) and every process below
/// it (WebKit's web and network processes).
pub(super) fn app_and_children(leader: u32) -> Vec<u32> {
    let procs = all_processes();
    let Some(app) = procs
        .iter()
        .find(|(_, p)| p.session == leader && p.name.starts_with("ferry-desktop"))
        .map(|(pid, _)| *pid)
    else {
        return Vec::new();
    };
    let mut family = vec![app];
    // Bounded: a process tree is never deeper than the processes there are.
    for _ in 0..procs.len() {
        let before = family.len();
        for (pid, p) in &procs {
            if family.contains(&p.parent) && !family.contains(pid) {
                family.push(*pid);
            }
        }
        if family.len() == before {
            break;
        }
    }
    family
}

/// Proportional set size of `pid` (shared pages split among their users), KiB.
pub(super) fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The app at rest.
#[derive(Debug)]
pub(super) struct Rest {
    /// The processes measured (the app and WebKit's).
    pub(super) processes: usize,
    pub(super) idle_secs: f64,
    /// CPU over the spell, percent of one core.
    pub(super) cpu_percent: f64,
    /// Memory at its end (PSS summed), MiB.
    pub(super) memory_mib: f64,
    /// CPU per process (name, percent of one core).
    pub(super) by_process: Vec<(String, f64)>,
}

/// Measures the app started in session `leader` over `idle` of nobody using it.
pub(super) async fn measure(leader: u32, idle: Duration) -> Rest {
    let ticks = |pids: &[u32]| -> u64 {
        pids.iter()
            .filter_map(|pid| read_proc(*pid))
            .map(|p| p.ticks)
            .sum()
    };
    let family = app_and_children(leader);
    let before: Vec<u64> = family.iter().map(|pid| ticks(&[*pid])).collect();
    let began = Instant::now();
    tokio::time::sleep(idle).await;
    let idle_secs = began.elapsed().as_secs_f64();
    let percent = |ticks: u64| 100.0 * ticks as f64 / clock_ticks_per_second() / idle_secs;
    let by_process: Vec<(String, f64)> = family
        .iter()
        .zip(&before)
        .map(|(pid, start)| {
            let name = read_proc(*pid).map_or_else(|| pid.to_string(), |p| p.name);
            (name, percent(ticks(&[*pid]).saturating_sub(*start)))
        })
        .collect();
    Rest {
        processes: family.len(),
        idle_secs,
        cpu_percent: by_process.iter().map(|(_, p)| p).sum(),
        memory_mib: family.iter().map(|pid| pss_kib(*pid)).sum::<u64>() as f64 / 1024.0,
        by_process,
    }
}

/// Prints the figures, and writes them for the bench when it asks (`FERRY_DESKTOP_REPORT`).
pub(super) fn report(first_paint: Duration, rest: &Rest) {
    let split: Vec<String> = rest
        .by_process
        .iter()
        .map(|(name, percent)| format!("{name} {percent:.2} %"))
        .collect();
    eprintln!(
        "desktop: first paint {} ms after launch; at rest for {:.0} s: {:.2} % CPU ({}), \
         {:.0} MiB (PSS of {} processes)",
        first_paint.as_millis(),
        rest.idle_secs,
        rest.cpu_percent,
        split.join(", "),
        rest.memory_mib,
        rest.processes
    );
    if let Some(path) = std::env::var_os("FERRY_DESKTOP_REPORT") {
        let json = serde_json::json!({
            "first_paint_ms": first_paint.as_millis() as u64,
            "idle_secs": rest.idle_secs,
            "cpu_percent": rest.cpu_percent,
            "memory_mib": rest.memory_mib,
            "processes": rest.processes,
            "by_process": rest.by_process,
        });
        std::fs::write(path, json.to_string()).expect("writing the desktop report");
    }
}

/// How long to rest: `FERRY_DESKTOP_IDLE_SECS` (the bench asks for 60), else 5 s.
pub(super) fn idle_spell() -> Duration {
    let secs = std::env::var("FERRY_DESKTOP_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}
