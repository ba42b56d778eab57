//! `cargo xtask run | test`: installs what Ferry needs on a bare Debian/Ubuntu machine, then
//! builds, starts or tests everything. Product code never lives here.

mod bench;
mod bundle;
mod deps;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <run | test | bundle | bench | soak>
  run    build and start ferry-server with the embedded store and demo accounts
  test   everything CI runs: system packages, fmt, clippy, unit and end-to-end tests, and the
         .deb installed and started
  bundle the desktop app as a .deb (release build; --debug: the debug build), with the Tauri
         bundler; prints where it went
  bench  ferry against s5cmd, the aws CLI and rclone on the embedded store (medians of
         --reps N rounds, 3 by default); writes docs/benchmarks.md and .svg; --quick: a
         small run with debug builds that only checks the harness
  soak   the reliability suite run longer (FERRY_SOAK_CRASH_TRIALS, FERRY_SOAK_REPEATS);
         writes docs/reliability.md";

fn main() {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = root();
    let result = match task.as_str() {
        "test" => test(&root),
        "run" => run(&root),
        "bench" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            deps::ensure_test_tools().and_then(|path| bench::bench(&root, &path, &args))
        }
        "soak" => deps::ensure_test_tools().and_then(|path| soak::soak(&root, &path)),
        "bundle" => {
            let debug = std::env::args().skip(2).any(|a| a == "--debug");
            bundle::deb(&root, debug).map(|deb| println!("{}", deb.display()))
        }
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
    if !linting() {
        return lint_while_building();
    }
    let started = std::time::Instant::now();
    deps::ensure_system_tools()?;
    // pip needs nothing the build makes, and the build nothing pip installs: both at once.
    let python = std::thread::spawn(deps::ensure_python_tools);
    // The desktop crate embeds the built UI, so the UI comes first.
    ui_build(root, true)?;
    // The vendors' SDKs that the engine's signing oracle test runs (crates/ferry-engine/tests).
    step(
        &root.join("tests/oracles"),
        "npm",
        &["ci", "--no-audit", "--no-fund"],
    )?;
    let cargo = cargo();
    step(root, &cargo, &["fmt", "--all", "--", "--check"])?;
    // Built and linted at once (see `lint_while_building`).
    step(root, &cargo, &["build", "--workspace", "--all-targets"])?;
    let path = python
        .join()
        .map_err(|_| anyhow::anyhow!("installing the Python tools panicked"))??;
    step_with_path(
        root,
        &cargo,
        &["test", "--workspace", "--no-fail-fast"],
        Some(&path),
    )?;
    step(&root.join("ui"), "npm", &["run", "e2e"])?;
    // Installable: the .deb of the debug build (built above: no second profile of Tauri),
    // installed, started and signed in to, then removed.
    bundle::install_and_test(root, &path)?;
    // The benchmark harness, kept working (debug builds, small sizes; nothing asserted).
    bench::bench(root, &path, &["--quick".to_owned()])?;
    eprintln!(
        "==> all checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What `cargo clippy -- -D warnings` hands clippy-driver (its arguments after `--`).
const DENY_WARNINGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// Whether this process runs with clippy-driver as cargo's workspace wrapper, warnings denied.
fn linting() -> bool {
    let wrapper = std::env::var_os("RUSTC_WORKSPACE_WRAPPER").map(PathBuf::from);
    wrapper.is_some_and(|w| w.file_stem().is_some_and(|s| s == "clippy-driver"))
        && std::env::var("CLIPPY_ARGS").is_ok_and(|a| a == DENY_WARNINGS)
}

/// Runs `cargo xtask test` again with clippy inside the build, for it and every cargo it
/// starts: `clippy-driver` compiles the workspace's own crates in place of rustc — linting
/// them with warnings denied, as `cargo clippy --workspace --all-targets -- -D warnings`
/// would — and still makes their artifacts, so the dependencies are compiled once instead of
/// checked for clippy and then built again (cold, on 2 cores: 1 108 s instead of 662 s of
/// clippy and 648 s of build). The tests and the bundle build that follow reuse those
/// artifacts (the wrapper is part of cargo's fingerprint). So what the suite runs is the
/// workspace as clippy-driver compiles it: `cfg(clippy)` set (nothing here reads it) and
/// MIR optimisations off — the same program, built a little differently from a plain
/// `cargo build`. Ends this process with the run's exit status.
fn lint_while_building() -> anyhow::Result<()> {
    let driver = clippy_driver()?;
    let status = Command::new(std::env::current_exe().context("this program's path")?)
        .arg("test")
        .env("RUSTC_WORKSPACE_WRAPPER", &driver)
        .env("CLIPPY_ARGS", DENY_WARNINGS)
        .status()
        .context("starting the test run")?;
    std::process::exit(status.code().unwrap_or(1));
}

/// clippy-driver beside the cargo running this (where `cargo clippy` looks for it), or in the
/// toolchain's sysroot.
fn clippy_driver() -> anyhow::Result<PathBuf> {
    let name = format!("clippy-driver{}", std::env::consts::EXE_SUFFIX);
    let beside_cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .and_then(|cargo| cargo.parent().map(|dir| dir.join(&name)));
    if let Some(driver) = beside_cargo.filter(|d| d.is_file()) {
        return Ok(driver);
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("starting {rustc}"))?;
    if !sysroot.status.success() {
        bail!("{rustc} --print sysroot failed ({})", sysroot.status);
    }
    let sysroot = String::from_utf8(sysroot.stdout).context("rustc's sysroot")?;
    let driver = Path::new(sysroot.trim()).join("bin").join(&name);
    if !driver.is_file() {
        bail!(
            "{} is missing: install clippy (rustup component add clippy)",
            driver.display()
        );
    }
    Ok(driver)
}

/// The UI: install exactly the locked packages, then (for tests) type-check and unit-test it,
/// then build it into `ui/dist`, which the desktop app embeds.
pub(crate) fn ui_build(root: &Path, checks: bool) -> anyhow::Result<()> {
    deps::ensure_node()?;
    let ui = root.join("ui");
    step(&ui, "npm", &["ci", "--no-audit", "--no-fund"])?;
    if checks {
        step(&ui, "npm", &["run", "check"])?;
        step(&ui, "npm", &["test"])?;
        // The UI tests' page, with the simulated backend the app's build leaves out.
        step(&ui, "npm", &["run", "build:demo"])?;
    }
    step(&ui, "npm", &["run", "build"])
}

fn run(root: &Path) -> anyhow::Result<()> {
    deps::ensure_apt(deps::DESKTOP_PACKAGES)?;
    ui_build(root, false)?;
    let cargo = cargo();
    step(
        root,
        &cargo,
        &[
            "build",
            "--package",
            "ferry-server",
            "--package",
            "ferry-desktop",
        ],
    )?;
    let data_dir = root.join("target").join("ferry-dev");
    let server = root.join("target").join("debug").join("ferry-server");
    let api = std::env::var("FERRY_API_LISTEN").unwrap_or_else(|_| "127.0.0.1:8480".into());
    let store = std::env::var("FERRY_STORE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8481".into());
    eprintln!(
        "==> starting ferry-server (data in {}) and the Ferry window; closing the window stops both.
    Sign in with server http://{api} and the demo account printed below, then drag a file onto
    the window; History shows it confirmed. Without a display, the server keeps running: try
      curl -s -X POST http://{api}/api/v1/sessions -H 'content-type: application/json' \\
           -d '{{\"username\":\"alice\",\"password\":\"<printed password>\"}}'
",
        data_dir.display()
    );
    let mut server = Command::new(server)
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
        .spawn()
        .context("starting ferry-server")?;
    let has_display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let result = if has_display {
        std::thread::sleep(std::time::Duration::from_millis(800));
        Command::new(root.join("target").join("debug").join("ferry-desktop"))
            .status()
            .context("starting the Ferry window")
            .map(|_| ())
    } else {
        eprintln!("==> no display: only the server runs (Ctrl-C stops it)");
        server
            .wait()
            .context("waiting for ferry-server")
            .map(|_| ())
    };
    let _ = server.kill();
    let _ = server.wait();
    result
}
