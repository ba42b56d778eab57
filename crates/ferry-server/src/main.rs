//! `ferry-server`: run the app server, or manage its accounts.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ferry_protocol::{Addressing, Provider, Role, SignatureVersion};
use ferry_server::{BrokerConfig, BrokerKind, ServeOptions, Server};
use serde::Deserialize;

#[derive(Parser)]
#[command(
    name = "ferry-server",
    version,
    about = "Ferry's app server and embedded S3-compatible store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the embedded store.
    Serve(Box<ServeArgs>),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
        /// Where the server keeps its database.
        #[arg(long, env = "FERRY_SERVER_DATA_DIR", global = true)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from stdin (or prompted for on a terminal).
    Add {
        name: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts.
    List,
    /// Set a new password (read like `add`).
    Passwd { name: String },
    /// Disable an account and end its sessions and grants.
    Disable { name: String },
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file with any of these settings (flags and environment win over it).
    #[arg(long, env = "FERRY_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Database, master key and store blobs live here.
    #[arg(long, env = "FERRY_SERVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// API address (port 0 picks a free port).
    #[arg(long, env = "FERRY_SERVER_LISTEN")]
    listen: Option<SocketAddr>,
    /// Embedded store address (port 0 picks a free port).
    #[arg(long, env = "FERRY_SERVER_STORE_LISTEN")]
    store_listen: Option<SocketAddr>,
    /// Store URL written into grants, when clients reach it under another name.
    #[arg(long, env = "FERRY_SERVER_STORE_PUBLIC_URL")]
    store_public_url: Option<String>,
    /// The API's URL as stores reach it, for OSS and OBS upload callbacks. With a cloud broker
    /// callbacks are asked for only when this is set (the cloud must reach it).
    #[arg(long, env = "FERRY_SERVER_API_PUBLIC_URL")]
    api_public_url: Option<String>,
    /// Create (or reset) the demo accounts `alice` and `admin` and print their passwords.
    #[arg(long, env = "FERRY_SERVER_DEMO")]
    demo: bool,
    /// Lifetime of storage grants, in seconds.
    #[arg(long, env = "FERRY_SERVER_GRANT_TTL")]
    grant_ttl: Option<u64>,
    /// Lifetime of sign-in sessions, in seconds.
    #[arg(long, env = "FERRY_SERVER_SESSION_TTL")]
    session_ttl: Option<u64>,
    /// The store's bucket.
    #[arg(long, env = "FERRY_SERVER_BUCKET")]
    bucket: Option<String>,
    /// Region written into grants.
    #[arg(long, env = "FERRY_SERVER_REGION")]
    region: Option<String>,
    /// The store dialect of grants whose client does not ask for one: s3 (default), oss, obs.
    #[arg(long, env = "FERRY_SERVER_PROVIDER")]
    provider: Option<Provider>,
    /// The signature of such OSS grants: v4 (default) or v1.
    #[arg(long, env = "FERRY_SERVER_OSS_SIGNATURE")]
    oss_signature: Option<SignatureVersion>,
    /// A file (mode 0600) holding the broker's long-term secret, instead of the environment's
    /// FERRY_BROKER_SECRET_ACCESS_KEY or the [broker] section's secret_file.
    #[arg(long, env = "FERRY_BROKER_SECRET_FILE")]
    broker_secret_file: Option<PathBuf>,
}

/// Which broker the `[broker]` section chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FileBrokerKind {
    Embedded,
    Sts,
    Aliyun,
    Huawei,
    Jdcloud,
}

/// The `[broker]` section: where grants come from. Secrets are not written here: the key's
/// secret comes from FERRY_BROKER_SECRET_ACCESS_KEY or `secret_file` (mode 0600).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBroker {
    kind: FileBrokerKind,
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    store_endpoint: Option<String>,
    addressing: Option<Addressing>,
    provider: Option<Provider>,
    signature_version: Option<SignatureVersion>,
    role_arn: Option<String>,
    agency_name: Option<String>,
    agency_domain_name: Option<String>,
    domain_id: Option<String>,
    access_key_id: Option<String>,
    secret_file: Option<PathBuf>,
    timeout_seconds: Option<u64>,
    attempts: Option<u32>,
    deadline_seconds: Option<u64>,
}

impl FileBroker {
    /// The broker's configuration, its key from the environment first.
    fn resolve(self, secret_file: Option<PathBuf>) -> anyhow::Result<Option<BrokerConfig>> {
        let kind = match self.kind {
            FileBrokerKind::Embedded => return Ok(None),
            FileBrokerKind::Sts => BrokerKind::Sts,
            FileBrokerKind::Aliyun => BrokerKind::Aliyun,
            FileBrokerKind::Huawei => BrokerKind::Huawei,
            FileBrokerKind::Jdcloud => BrokerKind::Jdcloud,
        };
        let name = kind.as_str();
        let required = |value: Option<String>, what: &str| {
            value.with_context(|| format!("the {name} broker needs {what} in [broker]"))
        };
        let access_key_id = std::env::var("FERRY_BROKER_ACCESS_KEY_ID")
            .ok()
            .filter(|v| !v.is_empty())
            .or(self.access_key_id);
        let access_key_id = access_key_id.with_context(|| {
            format!("the {name} broker needs FERRY_BROKER_ACCESS_KEY_ID (or access_key_id)")
        })?;
        let secret = match std::env::var("FERRY_BROKER_SECRET_ACCESS_KEY") {
            Ok(secret) if !secret.is_empty() => ferry_sign::Secret::new(secret),
            _ => match secret_file.or(self.secret_file) {
                Some(path) => ferry_server::read_secret_file(&path)?,
                None => bail!(
                    "the {name} broker needs its secret in FERRY_BROKER_SECRET_ACCESS_KEY or in \
                     a file (mode 0600) named by secret_file or --broker-secret-file"
                ),
            },
        };
        let mut config = BrokerConfig::new(
            kind,
            required(self.region, "region")?,
            required(self.bucket, "bucket")?,
            required(self.store_endpoint, "store_endpoint")?,
            access_key_id,
            secret,
        );
        if let Some(endpoint) = self.endpoint {
            config.endpoint = endpoint;
        }
        if let Some(addressing) = self.addressing {
            config.addressing = addressing;
        }
        if let Some(provider) = self.provider {
            config.provider = provider;
        }
        if let Some(version) = self.signature_version {
            config.signature_version = version;
        }
        config.role_arn = self.role_arn;
        config.agency_name = self.agency_name;
        config.agency_domain_name = self.agency_domain_name;
        config.domain_id = self.domain_id;
        if let Some(secs) = self.timeout_seconds {
            config.timeout = Duration::from_secs(secs);
        }
        if let Some(attempts) = self.attempts {
            config.attempts = attempts;
        }
        if let Some(secs) = self.deadline_seconds {
            config.deadline = Duration::from_secs(secs);
        }
        Ok(Some(config))
    }
}

/// The optional TOML file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    store_listen: Option<SocketAddr>,
    store_public_url: Option<String>,
    api_public_url: Option<String>,
    demo: Option<bool>,
    grant_ttl: Option<u64>,
    session_ttl: Option<u64>,
    bucket: Option<String>,
    region: Option<String>,
    provider: Option<Provider>,
    oss_signature: Option<SignatureVersion>,
    broker: Option<FileBroker>,
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ferry-server")
}

impl ServeArgs {
    fn resolve(self) -> anyhow::Result<(ServeOptions, bool)> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let mut options = ServeOptions::new(data_dir);
        if let Some(listen) = self.listen.or(file.listen) {
            options.listen = listen;
        }
        if let Some(listen) = self.store_listen.or(file.store_listen) {
            options.store_listen = listen;
        }
        options.store_public_url = self.store_public_url.or(file.store_public_url);
        options.api_public_url = self.api_public_url.or(file.api_public_url);
        if let Some(secs) = self.grant_ttl.or(file.grant_ttl) {
            if secs == 0 {
                bail!("--grant-ttl must be at least 1 second");
            }
            options.grant_ttl = Duration::from_secs(secs);
        }
        if let Some(secs) = self.session_ttl.or(file.session_ttl) {
            options.session_ttl = Duration::from_secs(secs.max(1));
        }
        if let Some(bucket) = self.bucket.or(file.bucket) {
            options.bucket = bucket;
        }
        if let Some(region) = self.region.or(file.region) {
            options.region = region;
        }
        if let Some(provider) = self.provider.or(file.provider) {
            options.provider = provider;
        }
        if let Some(version) = self.oss_signature.or(file.oss_signature) {
            options.oss_signature = version;
        }
        options.broker = match file.broker {
            Some(broker) => broker.resolve(self.broker_secret_file)?,
            None if self.broker_secret_file.is_some() => {
                bail!("--broker-secret-file needs a [broker] section in the config file")
            }
            None => None,
        };
        Ok((options, self.demo || file.demo.unwrap_or(false)))
    }
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

fn user_command(command: UserCommand, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let accounts = ferry_server::accounts(&data_dir.unwrap_or_else(default_data_dir))?;
    match command {
        UserCommand::Add { name, admin } => {
            let password = read_password(&format!("Password for {name}: "))?;
            let role = if admin { Role::Admin } else { Role::User };
            let id = accounts.add(&name, &password, role)?;
            println!("added {name} (id {id}, {})", role.as_str());
        }
        UserCommand::List => {
            for (user, disabled) in accounts.list()? {
                let state = if disabled { "disabled" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{state}",
                    user.id,
                    user.name,
                    user.role.as_str()
                );
            }
        }
        UserCommand::Passwd { name } => {
            let password = read_password(&format!("New password for {name}: "))?;
            accounts.set_password(&name, &password)?;
            println!("password of {name} changed");
        }
        UserCommand::Disable { name } => {
            accounts.disable(&name)?;
            println!("{name} disabled");
        }
    }
    Ok(())
}

fn demo_accounts(server: &Server) -> anyhow::Result<Vec<(String, String, Role)>> {
    let mut created = Vec::new();
    for (name, role) in [("alice", Role::User), ("admin", Role::Admin)] {
        let password = ferry_server::random_password();
        if server.accounts().exists(name)? {
            server.accounts().set_password(name, &password)?;
        } else {
            server.accounts().add(name, &password, role)?;
        }
        created.push((name.to_owned(), password, role));
    }
    Ok(created)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (options, demo) = args.resolve()?;
    let data_dir = options.data_dir.clone();
    let server = Server::start(options)
        .await
        .context("starting the server")?;
    // Start-up lines are for whoever started the server; if they stopped reading (a closed
    // pipe), the server keeps serving.
    let mut lines = vec![
        format!("api: {}", server.api_url()),
        format!("store: {}", server.store_url()),
        format!("data: {}", data_dir.display()),
    ];
    if demo {
        for (name, password, role) in demo_accounts(&server)? {
            lines.push(format!(
                "demo account: {name} / {password} ({})",
                role.as_str()
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

fn init_logging() {
    // s3s logs whole requests (signatures and security tokens included) at debug level: keep it
    // at warn whatever RUST_LOG says, so secrets never reach the log.
    let asked = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{asked},s3s=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::User { command, data_dir } => user_command(command, data_dir),
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .context("starting the runtime")?
            .block_on(serve(*args)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from([&["ferry-server", "serve"], args].concat()).unwrap();
        match cli.command {
            Command::Serve(args) => *args,
            Command::User { .. } => unreachable!(),
        }
    }

    #[test]
    fn the_default_dialect_comes_from_flags_or_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ferry.toml");
        std::fs::write(&config, "provider = \"oss\"\noss_signature = \"v1\"\n").unwrap();
        let config = config.to_str().unwrap();

        let (options, _) = serve_args(&["--config", config]).resolve().unwrap();
        assert_eq!(options.provider, Provider::Oss);
        assert_eq!(options.oss_signature, SignatureVersion::V1);

        let (options, _) = serve_args(&["--config", config, "--provider", "obs"])
            .resolve()
            .unwrap();
        assert_eq!(options.provider, Provider::Obs, "flags win over the file");

        let (options, _) = serve_args(&[]).resolve().unwrap();
        assert_eq!(options.provider, Provider::S3);
        assert_eq!(options.oss_signature, SignatureVersion::V4);

        assert!(Cli::try_parse_from(["ferry-server", "serve", "--provider", "gcs"]).is_err());
    }

    #[test]
    fn the_apis_public_url_comes_from_flags_or_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ferry.toml");
        std::fs::write(&config, "api_public_url = \"https://files.example.com\"\n").unwrap();
        let config = config.to_str().unwrap();
        let (options, _) = serve_args(&["--config", config]).resolve().unwrap();
        assert_eq!(
            options.api_public_url.as_deref(),
            Some("https://files.example.com")
        );
        let (options, _) = serve_args(&["--api-public-url", "https://b.example.com"])
            .resolve()
            .unwrap();
        assert_eq!(
            options.api_public_url.as_deref(),
            Some("https://b.example.com")
        );
        assert_eq!(serve_args(&[]).resolve().unwrap().0.api_public_url, None);
    }

    #[cfg(unix)]
    #[test]
    fn the_broker_comes_from_the_config_file_and_its_secret_from_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("broker.secret");
        std::fs::write(&secret, "very-secret-value\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.path().join("ferry.toml");
        std::fs::write(
            &config,
            format!(
                "grant_ttl = 1800\n[broker]\nkind = \"aliyun\"\nregion = \"cn-hangzhou\"\n\
                 bucket = \"photos\"\nstore_endpoint = \"https://oss-cn-hangzhou.aliyuncs.com\"\n\
                 role_arn = \"acs:ram::1:role/uploads\"\naccess_key_id = \"LTAI5t\"\n\
                 secret_file = {:?}\nattempts = 5\n",
                secret.to_str().unwrap()
            ),
        )
        .unwrap();
        let (options, _) = serve_args(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap();
        let broker = options.broker.clone().expect("a broker");
        assert_eq!(broker.kind, BrokerKind::Aliyun);
        assert_eq!(broker.provider, Provider::Oss);
        assert_eq!(broker.endpoint, "https://sts.aliyuncs.com");
        assert_eq!(broker.attempts, 5);
        assert_eq!(broker.secret.expose(), "very-secret-value");
        assert!(!format!("{options:?}").contains("very-secret"));

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = serve_args(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err:#}");

        std::fs::write(&config, "[broker]\nkind = \"embedded\"\n").unwrap();
        let (options, _) = serve_args(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert!(options.broker.is_none());

        std::fs::write(&config, "[broker]\nkind = \"gcs\"\n").unwrap();
        assert!(
            serve_args(&["--config", config.to_str().unwrap()])
                .resolve()
                .is_err()
        );
        std::fs::write(&config, "[broker]\nkind = \"sts\"\nsecret = \"x\"\n").unwrap();
        let err = serve_args(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }
}
