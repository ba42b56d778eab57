//! Ferry's app server: accounts and sessions, temporary-credential grants, an embedded
//! S3-compatible store that enforces those grants, upload confirmations and history.
//!
//! [`Server::start`] runs the API and the store on their own listeners (port 0 is fine) and
//! hands back their addresses; the `ferry-server` binary is a thin CLI over it.

mod accounts;
mod api;
mod callbacks;
mod db;
mod error;
mod grants;
mod listener;
mod object_key;
mod sessions;
mod store;
mod uploads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::accounts::Accounts;
pub use crate::callbacks::{CallbackCase, verify_callback};
pub use crate::db::{Db, DbError};
pub use crate::error::{Error, Result};
pub use crate::grants::{BrokerConfig, BrokerError, BrokerKind, SecretFileError, read_secret_file};
pub use crate::sessions::ThrottlePolicy;
pub use crate::uploads::HistoryQuery;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Database, master key and store blobs live here.
    pub data_dir: PathBuf,
    /// API listener address.
    pub listen: SocketAddr,
    /// Embedded store listener address.
    pub store_listen: SocketAddr,
    /// Store URL put into grants; defaults to `http://<bound store address>`.
    pub store_public_url: Option<String>,
    /// The API's URL as stores reach it, put into OSS and OBS grants' callbacks (the embedded
    /// store calls back there and nowhere else); defaults to `http://<bound API address>`.
    /// With a cloud broker, callbacks are asked for only when this is set, and only of OSS
    /// (OBS's callback signature is not one Ferry can check).
    pub api_public_url: Option<String>,
    /// Lifetime of grants.
    pub grant_ttl: Duration,
    /// Lifetime of sign-in sessions.
    pub session_ttl: Duration,
    /// The store's bucket.
    pub bucket: String,
    /// Region put into grants (and used for signing).
    pub region: String,
    /// The dialect of grants whose client does not ask for one.
    pub provider: ferry_protocol::Provider,
    /// The signature of OSS grants whose client does not ask for one (V4 or V1).
    pub oss_signature: ferry_protocol::SignatureVersion,
    /// Sign-in throttle limits.
    pub throttle: ThrottlePolicy,
    /// How long a client may take to send a request head (and how long an idle keep-alive
    /// connection stays open) before the connection is closed.
    pub header_read_timeout: Duration,
    /// The longest pause the store waits for between two pieces of a request body; a body
    /// that stops arriving (a dead link that never closes) is then refused (`RequestTimeout`).
    pub body_read_timeout: Duration,
    /// The cloud credential service grants come from; the embedded store's when `None`.
    pub broker: Option<BrokerConfig>,
}

impl ServeOptions {
    /// Defaults for a data dir: loopback, random ports, 900 s grants, 12 h sessions, 30 s to
    /// send a request head.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store_public_url: None,
            api_public_url: None,
            grant_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(12 * 3600),
            bucket: "ferry".into(),
            region: "us-east-1".into(),
            provider: ferry_protocol::Provider::S3,
            oss_signature: ferry_protocol::SignatureVersion::V4,
            throttle: ThrottlePolicy::default(),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            broker: None,
        }
    }
}

/// Opens the database of a data dir (creating both if needed).
pub fn open_db(data_dir: &Path) -> Result<Db> {
    std::fs::create_dir_all(data_dir).map_err(Error::io("creating the data dir"))?;
    Ok(Db::open(&data_dir.join("ferry-server.db"))?)
}

/// Account administration over a data dir, for the CLI.
pub fn accounts(data_dir: &Path) -> Result<Accounts> {
    Ok(Accounts::new(open_db(data_dir)?))
}

/// A random password for a demo account.
pub fn random_password() -> String {
    accounts::random_password()
}

/// The key grant secrets are derived from; created (mode 0600) on first start.
fn master_key(data_dir: &Path) -> Result<[u8; 32]> {
    let path = data_dir.join("master.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(_) => Err(Error::Io {
            context: format!("{} is not a 32-byte key", path.display()),
            source: std::io::ErrorKind::InvalidData.into(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .map_err(Error::io("creating the master key"))?;
            std::io::Write::write_all(&mut file, &key)
                .map_err(Error::io("writing the master key"))?;
            Ok(key)
        }
        Err(err) => Err(Error::io("reading the master key")(err)),
    }
}

/// A key for one purpose, derived from the master key (so it needs no file of its own).
fn derived_key(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(master).expect("any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A running server. Dropping it does not stop it; call [`Server::stop`].
pub struct Server {
    store: store::Store,
    api_addr: SocketAddr,
    store_addr: SocketAddr,
    accounts: Accounts,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Opens the data dir, binds both listeners and starts serving.
    pub async fn start(options: ServeOptions) -> Result<Self> {
        let db = open_db(&options.data_dir)?;
        let key = master_key(&options.data_dir)?;
        let api_listener = TcpListener::bind(options.listen)
            .await
            .map_err(Error::io("binding the API listener"))?;
        let store_listener = TcpListener::bind(options.store_listen)
            .await
            .map_err(Error::io("binding the store listener"))?;
        let api_addr = api_listener
            .local_addr()
            .map_err(Error::io("reading the API address"))?;
        let store_addr = store_listener
            .local_addr()
            .map_err(Error::io("reading the store address"))?;
        let endpoint = options
            .store_public_url
            .clone()
            .unwrap_or(format!("http://{store_addr}"));
        let api_public = options
            .api_public_url
            .clone()
            .unwrap_or(format!("http://{api_addr}"));
        let token_key = derived_key(&key, "ferry-callback-token");
        let obs_key = derived_key(&key, "ferry-callback-key");
        let delivery = Arc::new(callbacks::Delivery::new(
            callbacks::store_key(&options.data_dir),
            obs_key,
            format!("{endpoint}{}", callbacks::PUBLIC_KEY_PATH),
            vec![api_public.clone(), format!("http://{api_addr}")],
        )?);
        // A cloud's store must reach the API: callbacks only when its URL is given, and only
        // OSS's, whose signature the server can check against OSS's published key.
        let offered = match (&options.broker, &options.api_public_url) {
            (None, _) => vec![ferry_protocol::Provider::Oss, ferry_protocol::Provider::Obs],
            (Some(_), Some(_)) => vec![ferry_protocol::Provider::Oss],
            (Some(_), None) => Vec::new(),
        };
        let callbacks =
            callbacks::Callbacks::new((token_key, obs_key), api_public, &endpoint, offered)?;
        let grants = Arc::new(grants::Grants::new(
            db.clone(),
            key,
            grants::GrantSettings {
                endpoint,
                region: options.region.clone(),
                bucket: options.bucket.clone(),
                ttl: options.grant_ttl,
                provider: options.provider,
                oss_signature: options.oss_signature,
            },
            options.broker.clone(),
        )?);
        let store = store::Store::open(
            &options.data_dir.join("store"),
            db.clone(),
            grants.clone(),
            delivery,
            options.body_read_timeout,
        )?;
        let state = Arc::new(api::AppState {
            sessions: sessions::Sessions::new(db.clone(), options.throttle, options.session_ttl),
            uploads: uploads::Uploads::new(db.clone(), store.clone(), grants.upload_bucket()),
            grants,
            callbacks,
        });
        let (shutdown, watching) = watch::channel(false);
        let router = api::router(state);
        let store_service = store.service();
        let timeout = options.header_read_timeout;
        let tasks = vec![
            tokio::spawn(listener::serve(
                api_listener,
                watching.clone(),
                timeout,
                move |peer| listener::with_peer(router.clone(), peer),
            )),
            tokio::spawn(listener::serve(
                store_listener,
                watching,
                timeout,
                move |_| store_service.clone(),
            )),
        ];
        Ok(Self {
            store,
            api_addr,
            store_addr,
            accounts: Accounts::new(db),
            shutdown,
            tasks,
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:41234`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Base URL of the embedded store.
    pub fn store_url(&self) -> String {
        format!("http://{}", self.store_addr)
    }

    /// Bytes of request bodies the store received since start (kept or not): what clients sent,
    /// counted where it arrives.
    pub fn store_bytes_received(&self) -> u64 {
        self.store.bytes_received()
    }

    /// The whole content of the committed object at `bucket/key`, or `None` when there is none.
    ///
    /// For tests and administrators on the server's machine: it reads the object's blob into
    /// memory. It is not part of the S3 surface, where grants allow uploads only.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.object_bytes(bucket, key).await
    }

    /// Account administration on the running server's database.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Stops accepting, drops every open connection, and waits for the listeners to close.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
