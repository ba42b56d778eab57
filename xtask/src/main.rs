//! `cargo xtask run | test`: installs what Ferry needs on a bare Debian/Ubuntu machine, then
//! builds, starts or tests everything. Product code never lives here.

mod bench;
mod deps;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <run | test | bench>
  run    build and start ferry-server with the embedded store and demo accounts
  test   everything CI runs: system packages, fmt, clippy, unit and end-to-end tests
  bench  ferry against rclone and aws s3 cp on the embedded store; writes docs/benchmarks.md";

fn main() {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = root();
    let result = match task.as_str() {
        "test" => test(&root),
        "run" => run(&root),
        "bench" => deps::ensure_test_tools().and_then(|path| bench::bench(&root, &path)),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// The repository root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the repository")
        .to_owned()
}

/// Runs a command in `dir`, echoing it, and fails with its exit status.
pub(crate) fn step(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    step_with_path(dir, program, args, None)
}

/// Like [`step`], with another PATH for the command and its children.
fn step_with_path(
    dir: &Path,
    program: &str,
    args: &[&str],
    path: Option<&std::ffi::OsStr>,
) -> anyhow::Result<()> {
    eprintln!("==> {program} {}", args.join(" "));
    let mut command = Command::new(program);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let status = command
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn test(root: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let path = deps::ensure_test_tools()?;
    let cargo = cargo();
    step(root, &cargo, &["fmt", "--all", "--", "--check"])?;
    step(
        root,
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step(root, &cargo, &["build", "--workspace", "--all-targets"])?;
    step_with_path(
        root,
        &cargo,
        &["test", "--workspace", "--no-fail-fast"],
        Some(&path),
    )?;
    ui(root)?;
    eprintln!(
        "==> all checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The UI: install exactly the locked packages, type-check, unit tests, build, then the
/// Playwright tests in Debian's Chromium (which also write `docs/screenshots/`).
fn ui(root: &Path) -> anyhow::Result<()> {
    deps::ensure_apt(&["chromium"])?;
    deps::ensure_node()?;
    let ui = root.join("ui");
    step(&ui, "npm", &["ci", "--no-audit", "--no-fund"])?;
    step(&ui, "npm", &["run", "check"])?;
    step(&ui, "npm", &["test"])?;
    step(&ui, "npm", &["run", "build"])?;
    step(&ui, "npm", &["run", "e2e"])
}

fn run(root: &Path) -> anyhow::Result<()> {
    let cargo = cargo();
    step(root, &cargo, &["build", "--package", "ferry-server"])?;
    let data_dir = root.join("target").join("ferry-dev");
    let server = root.join("target").join("debug").join("ferry-server");
    let api = std::env::var("FERRY_API_LISTEN").unwrap_or_else(|_| "127.0.0.1:8480".into());
    let store = std::env::var("FERRY_STORE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8481".into());
    eprintln!(
        "==> starting ferry-server (data in {}); Ctrl-C stops it.

Try it once the addresses and demo passwords are printed below:
  curl -s -X POST http://{api}/api/v1/sessions -H 'content-type: application/json' \\
       -d '{{\"username\":\"alice\",\"password\":\"<printed password>\"}}'
  curl -s -X POST http://{api}/api/v1/grants -H 'authorization: Bearer <token>' \\
       -H 'content-type: application/json' -d '{{}}'
  AWS_ACCESS_KEY_ID=<access_key_id> AWS_SECRET_ACCESS_KEY=<secret_access_key> \\
  AWS_SESSION_TOKEN=<security_token> aws --endpoint-url http://{store} --region us-east-1 \\
       s3 cp ./some-file s3://ferry/uploads/<user id>/some-file
  curl -s http://{api}/api/v1/uploads -H 'authorization: Bearer <token>'
",
        data_dir.display()
    );
    let status = Command::new(server)
        .args([
            "serve",
            "--demo",
            "--listen",
            &api,
            "--store-listen",
            &store,
            "--data-dir",
        ])
        .arg(&data_dir)
        .status()
        .context("starting ferry-server")?;
    if !status.success() {
        bail!("ferry-server exited with {status}");
    }
    Ok(())
}
