//! `cargo xtask bench`: Ferry's engine against `rclone` and `aws s3 cp` on the same machine, the
//! same embedded store and the same temporary credentials, plus the store's own ceiling (one
//! plain signed PUT with curl). Release builds. Writes `docs/benchmarks.md`.
//!
//! So far: one 1 GiB file (MiB/s and peak RSS). The 2 000 small files, kill-and-resume and
//! watched-folder figures of DESIGN.md come next.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

const SIZE: u64 = 1 << 30;

/// The dialects Ferry's own upload is timed in: label, provider, signature version. The first
/// is the reference the other rows are compared with.
const DIALECTS: [(&str, &str, &str); 4] = [
    ("ferry upload (s3)", "s3", "v4"),
    ("ferry upload (oss, V4)", "oss", "v4"),
    ("ferry upload (oss, V1)", "oss", "v1"),
    ("ferry upload (obs)", "obs", "v4"),
];

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One timed run: seconds and the peak RSS (KiB) GNU time reported.
struct Run {
    secs: f64,
    rss_kib: u64,
}

fn timed(command: Command) -> anyhow::Result<Run> {
    let report = tempfile_path("time");
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&report)
        .arg(&program)
        .args(&args);
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    let started = Instant::now();
    let status = wrapped
        .stdout(Stdio::null())
        .status()
        .context("running /usr/bin/time")?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{} failed ({status})", program.to_string_lossy());
    }
    let text = std::fs::read_to_string(&report)?;
    let mut fields = text.split_whitespace();
    let _elapsed: f64 = fields.next().unwrap_or("0").parse().unwrap_or(0.0);
    let rss_kib = fields.next().unwrap_or("0").parse().unwrap_or(0);
    Ok(Run {
        secs: wall,
        rss_kib,
    })
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferry-bench-{}-{name}", std::process::id()))
}

fn start_server(root: &Path, data: &Path) -> anyhow::Result<(Server, String, String, String)> {
    let mut child = Command::new(root.join("target/release/ferry-server"))
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--store-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
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

/// A grant for alice, as `(access key, secret, token, prefix)`, through the API with curl.
fn grant(api: &str, password: &str) -> anyhow::Result<[String; 4]> {
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
    let body = format!("{{\"username\":\"alice\",\"password\":\"{password}\"}}");
    let session = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("{api}/api/v1/sessions"),
    ])?;
    let token = field(&session, "token");
    let grant = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        &format!("authorization: Bearer {token}"),
        "-d",
        "{}",
        &format!("{api}/api/v1/grants"),
    ])?;
    Ok([
        field(&grant, "access_key_id"),
        field(&grant, "secret_access_key"),
        field(&grant, "security_token"),
        field(&grant, "prefix"),
    ])
}

pub(crate) fn bench(root: &Path, path: &std::ffi::OsStr) -> anyhow::Result<()> {
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
    let work = tempfile_path("work");
    std::fs::create_dir_all(&work)?;
    let file = work.join("one-gib.bin");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..(SIZE >> 20) {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            out.write_all(&block)?;
        }
    }
    let (_server, api, store, password) = start_server(root, &work.join("server"))?;
    let [ak, sk, token, prefix] = grant(&api, &password)?;
    let mib = SIZE as f64 / (1 << 20) as f64;
    let mut rows = Vec::new();

    let mut curl = Command::new("curl");
    curl.args(["-sf", "-T"]).arg(&file).args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{ak}:{sk}"),
        "-H",
        &format!("x-amz-security-token: {token}"),
        "-H",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        &format!("{store}/ferry/{prefix}ceiling.bin"),
    ]);
    let run = timed(curl)?;
    rows.push(("store ceiling: one signed PUT (curl)", run));

    for (label, provider, version) in DIALECTS {
        let mut ferry = Command::new(root.join("target/release/ferry"));
        ferry
            .arg("upload")
            .arg(&file)
            .env(
                "FERRY_DATA_DIR",
                work.join(format!("ferry-{provider}-{version}")),
            )
            .env("FERRY_SERVER", &api)
            .env("FERRY_MEMORY_KEYCHAIN", "true")
            .env("FERRY_USER", "alice")
            .env("FERRY_PASSWORD", &password)
            .env("FERRY_PROVIDER", provider)
            .env("FERRY_SIGNATURE_VERSION", version);
        rows.push((label, timed(ferry)?));
    }

    let mut rclone = Command::new("rclone");
    rclone
        .args(["copyto", "--config", "/dev/null"])
        .arg(&file)
        .arg(format!("bench:ferry/{prefix}rclone.bin"))
        // The AWS SDK inside rclone refuses a CA bundle from the environment on its transport.
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", &ak)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", &sk)
        .env("RCLONE_CONFIG_BENCH_SESSION_TOKEN", &token)
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", &store)
        .env("RCLONE_CONFIG_BENCH_REGION", "us-east-1")
        .env("RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET", "true");
    rows.push(("rclone copyto (defaults)", timed(rclone)?));

    let mut aws = Command::new("aws");
    aws.args([
        "--endpoint-url",
        &store,
        "--region",
        "us-east-1",
        "s3",
        "cp",
        "--only-show-errors",
    ])
    .arg(&file)
    .arg(format!("s3://ferry/{prefix}aws.bin"))
    .env("PATH", path)
    .env("AWS_ACCESS_KEY_ID", &ak)
    .env("AWS_SECRET_ACCESS_KEY", &sk)
    .env("AWS_SESSION_TOKEN", &token)
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    rows.push(("aws s3 cp (defaults)", timed(aws)?));

    let ferry_rate = mib / rows[1].1.secs;
    let mut table = String::from(
        "| client | seconds | MiB/s | vs ferry | peak RSS (MiB) |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, run) in &rows {
        let rate = mib / run.secs;
        table.push_str(&format!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.0} |\n",
            run.secs,
            rate,
            rate / ferry_rate,
            run.rss_kib as f64 / 1024.0
        ));
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let doc = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` (release builds) on one machine: {} cores, {cpu}.\n\
One 1 GiB file of pseudo-random bytes uploaded to the embedded store on loopback; one run each,\n\
in this order. Ferry signs in and gets a grant of the dialect named (the store's S3, OSS or OBS\n\
front; same store core, same checks); curl, rclone and the aws CLI share one S3 grant. MiB/s =\n\
1024 / seconds (wall clock, process start to exit, including sign-in for ferry); peak RSS from\n\
GNU time (`%M`); \"vs ferry\" compares with ferry's S3 row.\n\n{table}\n\
Defaults: ferry 4 parts in flight of 8 MiB; rclone 4 × 5 MiB; aws CLI 10 × 8 MiB.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/benchmarks.md"), &doc)?;
    println!("{doc}");
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
