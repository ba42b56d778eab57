//! `ferry`: sign in, upload files and folders with progress, and read status and history, over
//! the same engine the desktop app uses.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ferry_engine::conflict::OnConflict;
use ferry_engine::events::{Event, EventSink};
use ferry_engine::journal::FileState;
use ferry_engine::keychain::{Keychain, MemoryKeychain, OsKeychain};
use ferry_engine::network::{ManualProxy, Network, ProxyChoice};
use ferry_engine::profile;
use ferry_engine::secret::Secret;
use ferry_engine::token_server::TokenServer;
use ferry_engine::transfer::TransferSettings;
use ferry_engine::{Engine, EngineConfig, Given};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Upload files to your organisation's storage"
)]
struct Cli {
    /// Holds the journal and settings (never secrets).
    #[arg(long, env = "FERRY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The app server (https://, or http:// to this computer); remembered after `login`.
    #[arg(long, env = "FERRY_SERVER", global = true)]
    server: Option<String>,
    /// A connection profile (TOML or JSON) for a server that only hands out credentials (one
    /// built from a vendor's tutorial); remembered after `login`.
    #[arg(
        long,
        env = "FERRY_CONNECTION",
        global = true,
        conflicts_with = "server"
    )]
    connection: Option<PathBuf>,
    /// Allow plain http:// to an app server on another computer (the password, the session
    /// and the storage credentials then cross the network unencrypted).
    #[arg(long, env = "FERRY_ALLOW_INSECURE_HTTP", global = true)]
    allow_insecure_http: bool,
    /// Reach the app server and the store through this proxy: http://, https://, socks5:// or
    /// socks5h://host:port (hosts in NO_PROXY still go directly); `direct` for none. Default:
    /// the environment's HTTPS_PROXY / HTTP_PROXY / ALL_PROXY.
    #[arg(long, env = "FERRY_PROXY", global = true, value_name = "URL")]
    proxy: Option<String>,
    /// The proxy's user name (its password from FERRY_PROXY_PASSWORD).
    #[arg(long, env = "FERRY_PROXY_USER", global = true)]
    proxy_user: Option<String>,
    /// Trust the CA certificates in this PEM file too (a company's TLS inspection).
    #[arg(long, env = "FERRY_CA_FILE", global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Keep secrets in memory only (no OS keychain): nothing survives this process.
    #[arg(long, env = "FERRY_MEMORY_KEYCHAIN", global = true)]
    memory_keychain: bool,
    /// Limit upload bandwidth, bytes per second.
    #[arg(long, env = "FERRY_BANDWIDTH", global = true)]
    bandwidth: Option<u64>,
    /// Parts in flight across all files, at most (Ferry starts with up to 8 and opens more
    /// while more move more bytes, as on a distant link). Default 16.
    #[arg(long, env = "FERRY_PARTS", global = true, value_parser = clap::value_parser!(u16).range(1..=64))]
    parts: Option<u16>,
    /// Files sending at once, at most (Ferry starts with up to 64 and sends more at once while
    /// more move more files per second). Default 128.
    #[arg(long, env = "FERRY_FILES", global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    files: Option<u16>,
    /// Ask for storage credentials this short-lived, in seconds.
    #[arg(long, env = "FERRY_GRANT_TTL", global = true, hide = true)]
    grant_ttl: Option<u64>,
    /// Ask the app server for grants of this dialect (s3, oss, obs), where it offers several.
    #[arg(long, env = "FERRY_PROVIDER", global = true, hide = true)]
    provider: Option<ferry_protocol::Provider>,
    /// With `--provider oss`: the signature (v4, v1).
    #[arg(long, env = "FERRY_SIGNATURE_VERSION", global = true, hide = true)]
    signature_version: Option<ferry_protocol::SignatureVersion>,
    /// Print every event (progress, state changes, retries) as one line of JSON on stdout,
    /// with `at_ms`, for scripts; the closing summary is JSON lines too.
    #[arg(long, env = "FERRY_JSON", global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in (password from FERRY_PASSWORD, stdin, or a prompt).
    Login { user: String },
    /// Upload files and folders (recursively) and wait until each is confirmed. A file already
    /// uploaded unchanged to the same place is not sent again.
    Upload {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Send files again even if they were uploaded unchanged before.
        #[arg(long)]
        force: bool,
        /// When an object is already at a file's key (not put there by this file): ask (the
        /// file waits, and a later run with another choice settles it), skip, overwrite,
        /// rename (keep both: `name (1).ext`), or newer (overwrite if the file is newer).
        #[arg(long, default_value = "ask", value_name = "RULE")]
        on_conflict: OnConflict,
    },
    /// Watch a folder and upload what appears in it (until Ctrl-C). The folder is kept with
    /// your watched folders — the desktop app's list — and, with no folder given, every folder
    /// kept and turned on is watched.
    Watch {
        /// The folder (kept already: its saved prefix, exclusions and rule apply).
        dir: Option<PathBuf>,
        /// Key prefix for this folder's files (below your upload prefix).
        #[arg(long, default_value = "", requires = "dir")]
        prefix: String,
        /// Extra glob patterns to leave out (repeatable).
        #[arg(long, requires = "dir")]
        exclude: Vec<String>,
        /// When an object is already at a file's key: ask, skip, overwrite, rename or newer
        /// (as for `upload`).
        #[arg(long, default_value = "ask", value_name = "RULE", requires = "dir")]
        on_conflict: OnConflict,
    },
    /// List your watched folders (the desktop app's list too).
    Folders,
    /// Forget a watched folder (its files already uploaded stay uploaded).
    Unwatch { dir: PathBuf },
    /// Show the queue (reads it without disturbing a running upload).
    Status,
    /// Show upload history from the server.
    History {
        /// Everyone's uploads (admins).
        #[arg(long)]
        all: bool,
    },
    /// Sign out and forget the credentials.
    Logout,
    /// Write a zip of the logs and a summary of the queue for whoever helps you (every secret
    /// is left out). Works signed out and offline too.
    Diagnostics {
        /// Where to write the zip.
        #[arg(default_value = "ferry-diagnostics.zip")]
        out: PathBuf,
    },
}

/// The network the flags describe (the proxy's password from `FERRY_PROXY_PASSWORD`, never a
/// flag: flags show in the process list).
fn network(cli: &Cli) -> Network {
    if cli.proxy_user.is_none() && std::env::var_os("FERRY_PROXY_PASSWORD").is_some() {
        eprintln!("FERRY_PROXY_PASSWORD is set but no --proxy-user: the password is not used");
    }
    let proxy = match cli.proxy.as_deref().map(str::trim) {
        None | Some("") => ProxyChoice::System,
        Some("direct") => ProxyChoice::Direct,
        Some(url) => ProxyChoice::Manual(ManualProxy {
            url: url.to_owned(),
            user: cli.proxy_user.clone(),
            password: std::env::var("FERRY_PROXY_PASSWORD")
                .ok()
                .map(ferry_engine::secret::Secret::new),
        }),
    };
    Network {
        proxy,
        extra_ca: cli.ca_file.clone(),
    }
}

fn keychain(memory: bool) -> anyhow::Result<Arc<dyn Keychain>> {
    if memory {
        return Ok(Arc::new(MemoryKeychain::default()));
    }
    match OsKeychain::open(profile::keychain_service()) {
        Ok(k) => Ok(Arc::new(k)),
        Err(err) => bail!(
            "{err} [{}]\nUse --memory-keychain to keep secrets in memory for this run only.",
            err.code()
        ),
    }
}

fn read_password() -> anyhow::Result<Secret> {
    if let Ok(p) = std::env::var("FERRY_PASSWORD") {
        return Ok(Secret::new(p));
    }
    if std::io::stdin().is_terminal() {
        return Ok(Secret::new(rpassword::prompt_password("Password: ")?));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}

struct Progress {
    bar: ProgressBar,
    sent: Mutex<HashMap<i64, u64>>,
}

/// The progress bar on stderr; hidden when stderr is not a terminal or `shown` is false.
fn progress_bar(shown: bool) -> Arc<Progress> {
    let bar = if shown && std::io::stderr().is_terminal() {
        // No length until every file given is journaled (a length of 0 is drawn full).
        ProgressBar::no_length()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(bar_style(false));
    Arc::new(Progress {
        bar,
        sent: Mutex::new(HashMap::new()),
    })
}

/// How the bar looks: while the files given are still being counted (journaled), the bytes
/// sent so far; then the bar, the total and the time left.
fn bar_style(counted: bool) -> ProgressStyle {
    let template = match counted {
        true => "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        false => "{bytes} sent, {bytes_per_sec}, counting the files… {msg}",
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `ferry watch`: `folder` kept and watched (kept already: as kept), or with none given every
/// folder kept and turned on; files uploaded as they settle, until Ctrl-C.
async fn watch(
    engine: &Engine,
    folder: Option<ferry_engine::watch::Folder>,
) -> anyhow::Result<bool> {
    let watched = match folder {
        Some(folder) => {
            let (folder, known) = engine.watch_folder(folder).await?;
            if known {
                eprintln!(
                    "{} is kept already: its saved prefix ({:?}), exclusions ({}) and rule ({}) \
                     apply — `ferry unwatch` it first to change them",
                    folder.path.display(),
                    folder.prefix,
                    folder.excludes.join(", "),
                    folder.on_conflict.as_str()
                );
            }
            vec![folder.path]
        }
        None => watch_kept(engine).await?,
    };
    for path in &watched {
        eprintln!("watching {}", path.display());
    }
    eprintln!("(Ctrl-C stops)");
    let (watcher, transfer) = (engine.watcher(), engine.transfer().clone());
    tokio::select! {
        result = watcher.run() => result?,
        result = transfer.run() => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(true)
}

/// Watches every folder of the account kept and turned on (the desktop app's list); the
/// paths watched. None kept: an error that says how to keep one.
async fn watch_kept(engine: &Engine) -> anyhow::Result<Vec<PathBuf>> {
    engine.watch_saved_folders().await?;
    let on: Vec<PathBuf> = engine
        .folders()
        .await?
        .into_iter()
        .filter(|f| f.enabled)
        .map(|f| f.folder.path)
        .collect();
    if on.is_empty() {
        bail!(
            "no watched folder is kept and turned on for this account: give one (`ferry watch \
             DIR`), or see `ferry folders`"
        );
    }
    Ok(on)
}

/// Rows `ferry upload` reads from the journal at once, before and after its run: one query
/// for many, while a long run's rows are not all held (all 50 000 at once: a peak of 119 MiB
/// against 51).
const ROWS_AT_ONCE: usize = 1000;

async fn upload(
    engine: &Engine,
    paths: &[PathBuf],
    (force, on_conflict): (bool, OnConflict),
    progress: &Arc<Progress>,
    json: bool,
) -> anyhow::Result<bool> {
    for path in paths {
        if std::fs::symlink_metadata(path).is_err() {
            eprintln!("{}: no such file or folder", path.display());
        }
    }
    // Files start as they are journaled; the bar's length is known once all are. Either
    // failing ends both (the rows journaled stay queued for the next run).
    let give = engine.give(paths, force, on_conflict);
    let given = async {
        let given = give.await?;
        let total = bytes_to_send(engine, &given).await?;
        progress.bar.set_length(total);
        progress.bar.set_style(bar_style(true));
        anyhow::Ok(given)
    };
    let run = async { Ok(engine.run_until_idle().await?) };
    let (given, _) = tokio::try_join!(given, run)?;
    let Given {
        ids,
        confirmed_before: already,
    } = given;
    progress.bar.finish_and_clear();
    let mut all_confirmed = !ids.is_empty();
    let mut asking = 0;
    // (A file named twice is listed twice, as it was named: at two keys, as `ferry upload
    // dir dir/a`, two rows; at the same key, as `ferry upload a a`, its one row again.)
    for chunk in ids.chunks(ROWS_AT_ONCE) {
        let found = engine.journal().files_with_ids(chunk)?;
        let found: HashMap<i64, _> = found.into_iter().map(|row| (row.id, row)).collect();
        for row in chunk.iter().filter_map(|id| found.get(id)) {
            all_confirmed &= row.state == FileState::Confirmed;
            asking += usize::from(
                row.state == FileState::Failed && row.error_code.as_deref() == Some("exists"),
            );
            let outcome = Outcome {
                file_id: row.id,
                already: already.contains(&row.id),
                state: row.state,
                path: row.path.display().to_string(),
                error: row.error_message.clone().unwrap_or_default(),
                key: row.object_key.clone().unwrap_or_else(|| row.key.clone()),
            };
            println!(
                "{}",
                if json {
                    outcome.json().to_string()
                } else {
                    outcome.text()
                }
            );
        }
    }
    if asking > 0 {
        eprintln!(
            "{asking} file(s) wait: an object is already at their key. Run the same command \
             again with --on-conflict overwrite, rename (keep both), skip or newer."
        );
    }
    Ok(all_confirmed && paths.iter().all(|p| std::fs::symlink_metadata(p).is_ok()))
}

/// The bytes of the files `given` that are to be sent (each file once, however often named).
async fn bytes_to_send(engine: &Engine, given: &Given) -> anyhow::Result<u64> {
    let (ids, before) = (given.ids.clone(), given.confirmed_before.clone());
    let total = engine
        .journal()
        .blocking(move |journal| {
            let (mut counted, mut total) = (HashSet::new(), 0);
            for chunk in ids.chunks(ROWS_AT_ONCE) {
                for row in journal.files_with_ids(chunk)? {
                    if !before.contains(&row.id) && counted.insert(row.id) {
                        total += row.size.unwrap_or(0);
                    }
                }
            }
            Ok(total)
        })
        .await?;
    Ok(total)
}

/// What became of one file of `ferry upload`, as its closing line says.
struct Outcome {
    file_id: i64,
    /// Uploaded unchanged before, so not sent.
    already: bool,
    state: FileState,
    path: String,
    key: String,
    error: String,
}

impl Outcome {
    fn text(&self) -> String {
        match (self.already, self.state) {
            (true, _) => format!(
                "already    {} (uploaded unchanged before; --force sends it again)",
                self.key
            ),
            (false, FileState::Confirmed) => format!("confirmed  {}", self.key),
            (false, state) => {
                // A file's error starts with its path already: said once.
                let why = self
                    .error
                    .strip_prefix(&format!("{}: ", self.path))
                    .unwrap_or(&self.error);
                format!("{:<10} {}: {why}", state.as_str(), self.path)
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "result",
            "file_id": self.file_id,
            "already": self.already,
            "state": self.state.as_str(),
            "path": self.path,
            "key": self.key,
            "error": (!self.error.is_empty()).then_some(&self.error),
        })
    }
}

/// Events for people: the progress bar, retries and an ended session on stderr.
fn progress_events(progress: Arc<Progress>) -> EventSink {
    Arc::new(move |event: Event| match event {
        Event::Progress { file_id, bytes, .. } => {
            let mut sent = progress.sent.lock().unwrap_or_else(|p| p.into_inner());
            sent.insert(file_id, bytes);
            progress.bar.set_position(sent.values().sum());
        }
        Event::SessionExpired => progress
            .bar
            .println("the session expired: sign in again (ferry login)"),
        // (`ferry upload` says it again at the end, for all of them.)
        Event::State {
            error: Some(error), ..
        } if error.code == "exists" => progress.bar.println(format!(
            "waiting: {} (settle it with --on-conflict overwrite, rename, skip or newer)",
            error.message
        )),
        Event::Retrying {
            operation,
            attempt,
            max_attempts,
            error,
            retry_in_ms,
            ..
        } => progress.bar.println(format!(
            "retrying {operation} in {:.1} s (attempt {attempt} of {max_attempts} failed: {} [{}])",
            retry_in_ms as f64 / 1000.0,
            error.message,
            error.code
        )),
        _ => {}
    })
}

/// Events for scripts (`--json`): every event as one line of JSON on stdout, with `at_ms`,
/// when it happened (Unix milliseconds).
fn json_lines() -> EventSink {
    Arc::new(|event: Event| {
        let Ok(serde_json::Value::Object(mut line)) = serde_json::to_value(&event) else {
            // Every event is plain data; should one not serialise, scripts still see it.
            let _ = writeln!(std::io::stdout().lock(), r#"{{"type":"unprintable"}}"#);
            return;
        };
        // Stamped under the lock: lines come out in the order of their times.
        let mut out = std::io::stdout().lock();
        let at_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        line.insert("at_ms".into(), serde_json::Value::from(at_ms as i64));
        let _ = writeln!(out, "{}", serde_json::Value::Object(line));
        let _ = out.flush();
    })
}

/// `ferry status`: the journal read-only, so a running upload is not disturbed.
async fn status(
    data_dir: &std::path::Path,
    server: &str,
    keychain: Arc<dyn Keychain>,
) -> anyhow::Result<bool> {
    let status = ferry_engine::read_status(data_dir, server, keychain).await?;
    match &status.account {
        Some(account) => println!("account    {account} at {server}"),
        None => println!("account    (not signed in at {server})"),
    }
    for (state, n) in &status.counts {
        if *n > 0 {
            println!("{:<10} {n}", state.as_str());
        }
    }
    for row in &status.recent {
        let whose = match (&row.user_name, &status.account) {
            (Some(name), Some(me)) if name == me => String::new(),
            (Some(name), _) => format!(" ({name}'s)"),
            (None, _) => " (an unknown account's)".into(),
        };
        println!(
            "{:<10} {:>12} {}{whose}",
            row.state.as_str(),
            row.size.unwrap_or(0),
            row.path.display()
        );
    }
    for waiting in &status.waiting_for_others {
        let name = waiting.name.as_deref().unwrap_or("an unknown account");
        let account = match &waiting.server {
            Some(server) => format!("{name} at {server}"),
            None => name.to_owned(),
        };
        println!(
            "waiting    {} file(s) of {account}: they upload when that account signs in",
            waiting.files
        );
    }
    match status.credentials_expire_at {
        Some(at) => println!("credentials expire at {at}"),
        None => println!("credentials none kept"),
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `status` reads and changes nothing, the log file included.
    let logs = (!matches!(cli.command, Command::Status)).then(|| data_dir(&cli));
    ferry_engine::diagnostics::log_to(logs.as_deref());
    match run(cli).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            // In the log file too: what `ferry diagnostics` packs for whoever helps.
            tracing::error!(target: ferry_engine::diagnostics::LOG_ONLY, error = %format!("{err:#}"), "the command failed");
            match err.downcast_ref::<ferry_engine::Error>() {
                Some(engine) => eprintln!("error: {err:#} [{}]", engine.code()),
                None => eprintln!("error: {err:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(profile::data_dir)
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let data_dir = data_dir(&cli);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let remembered = profile::remembered_server(&data_dir);
    let token_server = match &cli.connection {
        Some(path) => Some(TokenServer::load(path)?),
        None if cli.server.is_none() => remembered
            .as_deref()
            .and_then(|server| profile::remembered_token_server(&data_dir, server)),
        None => None,
    };
    let token_server = token_server
        .map(|t| profile::checked_token_server(t, cli.allow_insecure_http))
        .transpose()?;
    let server = match &token_server {
        Some(tokens) => tokens.token_url.clone(),
        None => {
            let server = cli
                .server
                .clone()
                .or(remembered)
                .unwrap_or_else(|| profile::DEFAULT_SERVER.into());
            profile::checked_server(&server, cli.allow_insecure_http)?
        }
    };
    let keychain = keychain(cli.memory_keychain)?;
    match &cli.command {
        Command::Status => return status(&data_dir, &server, keychain).await,
        // Without taking the data dir: the app or `ferry watch` may be running.
        Command::Diagnostics { out } => {
            // The proxy's password this command is given, named or not with `--proxy`.
            let known: Vec<_> = std::env::var("FERRY_PROXY_PASSWORD")
                .ok()
                .map(ferry_engine::secret::Secret::new)
                .into_iter()
                .collect();
            ferry_engine::diagnostics::save_diagnostics_of(
                &data_dir, &server, keychain, &known, out,
            )
            .await?;
            println!("diagnostics written to {}", out.display());
            return Ok(true);
        }
        _ => {}
    }
    let progress = progress_bar(!cli.json);
    let events = if cli.json {
        json_lines()
    } else {
        progress_events(progress.clone())
    };
    let defaults = TransferSettings::default();
    let parts = cli.parts.map_or(defaults.parts, usize::from);
    let settings = TransferSettings {
        bandwidth: cli.bandwidth,
        parts,
        per_file_parts: parts,
        files: cli.files.map_or(defaults.files, usize::from),
        ..defaults
    };
    let engine = Engine::open(EngineConfig {
        data_dir: data_dir.clone(),
        server: server.clone(),
        keychain,
        events,
        transfer: settings,
        grant: ferry_protocol::GrantRequest {
            ttl_seconds: cli.grant_ttl,
            provider: cli.provider,
            signature_version: cli.signature_version,
        },
        device: profile::device_name(),
        token_server: token_server.clone(),
        network: network(&cli),
    })?;
    match cli.command {
        Command::Login { user } => {
            let password = read_password()?;
            let me = engine
                .sign_in(&user, &password, &profile::device_name())
                .await?;
            profile::remember_server(&data_dir, &server)?;
            if let Some(tokens) = &token_server {
                profile::remember_token_server(&data_dir, tokens)?;
            }
            println!(
                "signed in to {server} as {} ({})",
                me.name,
                me.role.as_str()
            );
            Ok(true)
        }
        Command::Logout => {
            engine.sign_out().await?;
            println!("signed out");
            Ok(true)
        }
        Command::Status | Command::Diagnostics { .. } => unreachable!("handled above"),
        command => {
            // `watch` stays running: started before the network, it keeps the session it has
            // and uploads once the server answers. A one-off command says the server is gone.
            let restored = match command {
                Command::Watch { .. } => engine.restore_even_offline().await?,
                _ => engine.restore().await?,
            };
            if restored.is_none() {
                match (std::env::var("FERRY_USER"), cli.memory_keychain) {
                    (Ok(user), _) => {
                        engine
                            .sign_in(&user, &read_password()?, &profile::device_name())
                            .await?;
                    }
                    _ => bail!("not signed in: run `ferry login USER` first"),
                }
            }
            match command {
                Command::Upload {
                    paths,
                    force,
                    on_conflict,
                } => upload(&engine, &paths, (force, on_conflict), &progress, cli.json).await,
                Command::Watch {
                    dir,
                    prefix,
                    exclude,
                    on_conflict,
                } => {
                    let folder = dir.map(|path| ferry_engine::watch::Folder {
                        path,
                        prefix,
                        excludes: exclude,
                        on_conflict,
                    });
                    watch(&engine, folder).await
                }
                Command::Folders => {
                    for kept in engine.folders().await? {
                        let f = &kept.folder;
                        println!(
                            "{}{}  prefix {:?}  on conflict: {}  excludes: {}",
                            f.path.display(),
                            if kept.enabled { "" } else { "  (off)" },
                            f.prefix,
                            f.on_conflict.as_str(),
                            f.excludes.join(", ")
                        );
                    }
                    Ok(true)
                }
                Command::Unwatch { dir } => {
                    engine.remove_folder(&dir).await?;
                    println!("no longer watching {}", dir.display());
                    Ok(true)
                }
                Command::History { all } => {
                    let query = if all { "limit=100" } else { "limit=100&user=" };
                    let query = if all {
                        query.to_owned()
                    } else {
                        let me = engine
                            .session()
                            .user()
                            .map(|(u, _)| u.name)
                            .unwrap_or_default();
                        format!("{query}{me}")
                    };
                    for row in engine.history(&query).await?.items {
                        println!(
                            "{}  {:<8} {:>12}  {:<9} {}",
                            row.completed_at,
                            row.user,
                            row.size,
                            row.status.as_str(),
                            row.key
                        );
                    }
                    Ok(true)
                }
                Command::Login { .. }
                | Command::Logout
                | Command::Status
                | Command::Diagnostics { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
