//! How Ferry reaches the app server and the store: through the system's proxy (the
//! environment's `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`; with none of those,
//! on Linux, the desktop's own setting as GNOME keeps it), directly, or through
//! a proxy the user names — HTTP, HTTPS or SOCKS5, with a user name and password — and trusting
//! extra CA certificates (a PEM file: a company's TLS inspection) beside the built-in ones.
//! Both HTTP clients (the app server's and the store's) are built here, the same way.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How to reach the network.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Which proxy, if any.
    pub proxy: ProxyChoice,
    /// A PEM file of CA certificates to trust besides the built-in ones.
    pub extra_ca: Option<PathBuf>,
}

impl Network {
    /// The proxy's password, when it is one the user named with a password: a secret the
    /// diagnostics leave out.
    pub(crate) fn proxy_password(&self) -> Option<Secret> {
        match &self.proxy {
            ProxyChoice::Manual(manual) => manual.password.clone(),
            _ => None,
        }
    }
}

/// Which proxy requests go through.
#[derive(Debug, Clone, Default)]
pub enum ProxyChoice {
    /// The system's: the environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`, except for
    /// hosts in `NO_PROXY`.
    #[default]
    System,
    /// None: every request goes directly.
    Direct,
    /// This one (hosts in the environment's `NO_PROXY` still go directly).
    Manual(ManualProxy),
}

/// A proxy the user names.
#[derive(Clone)]
pub struct ManualProxy {
    /// `http://host:port`, `https://host:port`, `socks5://host:port` (names resolved by the
    /// proxy: `socks5h://`).
    pub url: String,
    /// The user name, when the proxy asks for one.
    pub user: Option<String>,
    /// Its password (kept in the keychain by the front ends, never in settings).
    pub password: Option<Secret>,
}

impl std::fmt::Debug for ManualProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualProxy")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidNetwork(what.into())
}

/// `url` as it may be shown: a user name and password in it replaced by `…@`.
fn shown(url: &str) -> String {
    let url = url.trim();
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}…@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

impl ManualProxy {
    /// The proxy as reqwest takes it: HTTP(S) proxies get the credentials as
    /// `Proxy-Authorization`, SOCKS5 ones for their RFC 1929 login. (reqwest keeps them inside
    /// its `Proxy`, whose Debug output would show them: no client is ever Debug-printed.)
    fn proxy(&self) -> Result<reqwest::Proxy> {
        let mut url = reqwest::Url::parse(self.url.trim()).map_err(|e| {
            invalid(format!(
                "the proxy {:?} is not an address: {e}",
                shown(&self.url)
            ))
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!(
                "the proxy {:?} names no host",
                shown(&self.url)
            )));
        }
        // A password in the address would end up wherever the address is kept or shown.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "give the proxy's user name and password in their own fields, not in its address",
            ));
        }
        let socks = matches!(url.scheme(), "socks5" | "socks5h");
        if !socks && !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the proxy {:?} is not http://, https://, socks5:// or socks5h://",
                shown(&self.url)
            )));
        }
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        if socks && let Some(user) = &self.user {
            let _ = url.set_username(user);
            let _ = url.set_password(Some(password));
        }
        let mut proxy = reqwest::Proxy::all(url.as_str())
            .map_err(|e| invalid(format!("the proxy {:?}: {e}", shown(&self.url))))?
            .no_proxy(reqwest::NoProxy::from_env());
        if !socks && let Some(user) = &self.user {
            proxy = proxy.basic_auth(user, password);
        }
        Ok(proxy)
    }
}

impl Network {
    /// Refuses settings that cannot be used (a proxy that is not an address, a CA file with no
    /// certificate), with the reason.
    pub fn check(&self) -> Result<()> {
        self.builder(Duration::from_secs(10)).map(|_| ())
    }

    /// A client builder set up for this network: proxy, extra CA certificates, and a connect
    /// timeout of at most 10 s.
    pub(crate) fn builder(&self, connect_timeout: Duration) -> Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder().connect_timeout(connect_timeout);
        builder = match &self.proxy {
            // reqwest reads the environment's proxies by itself; without any, the desktop's.
            ProxyChoice::System => match desktop::proxy() {
                Some(proxy) => builder.proxy(proxy),
                None => builder,
            },
            ProxyChoice::Direct => builder.no_proxy(),
            ProxyChoice::Manual(manual) => builder.proxy(manual.proxy()?),
        };
        if let Some(path) = &self.extra_ca {
            for certificate in extra_certificates(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder)
    }

    /// A client for this network that gives up on a connection after `connect_timeout`.
    pub(crate) fn client(
        &self,
        connect_timeout: Duration,
        shape: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client> {
        shape(self.builder(connect_timeout)?)
            .build()
            .map_err(|source| Error::Network {
                operation: "starting the HTTP client",
                target: String::new(),
                source,
            })
    }
}

/// How a client is made beyond its network (timeouts, pool) — kept, because a reqwest client
/// cannot change its proxy or its trusted certificates: another network means another client,
/// made the same way.
type Shape = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

/// An HTTP client whose network can change while it is used: requests made from then on go
/// the new way, those under way finish the old one. Clones share it.
#[derive(Clone)]
pub(crate) struct Client {
    current: Arc<RwLock<reqwest::Client>>,
    connect_timeout: Duration,
    shape: Arc<Shape>,
}

impl Client {
    /// A client on `network` that gives up on a connection after `connect_timeout`, made as
    /// `shape` says.
    pub(crate) fn new(
        network: &Network,
        connect_timeout: Duration,
        shape: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self> {
        let shape: Arc<Shape> = Arc::new(shape);
        let first = network.client(connect_timeout, |b| shape(b))?;
        Ok(Self {
            current: Arc::new(RwLock::new(first)),
            connect_timeout,
            shape,
        })
    }

    /// The client to make a request with now.
    pub(crate) fn current(&self) -> reqwest::Client {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The client this one would be on `network` (an unusable network is an error and
    /// changes nothing); [`Client::take`] puts it in use.
    pub(crate) fn on(&self, network: &Network) -> Result<Prepared> {
        Ok(Prepared(
            network.client(self.connect_timeout, |b| (self.shape)(b))?,
        ))
    }

    /// Makes the requests from now go through `client` (made by [`Client::on`]).
    pub(crate) fn take(&self, client: Prepared) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = client.0;
    }
}

/// A client made for another network by [`Client::on`], shaped as the one it replaces.
pub(crate) struct Prepared(reqwest::Client);

/// The certificates of a PEM file; a file that holds none, or cannot be read, is an error
/// that names it.
fn extra_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    /// A bundle of every public CA is ~220 KiB; more is not a CA file.
    const MOST: u64 = 1024 * 1024;
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(invalid(format!("{shown} is not a file of CA certificates")));
        }
        Ok(meta) if meta.len() > MOST => {
            return Err(invalid(format!(
                "{shown} is over 1 MiB: not a file of CA certificates"
            )));
        }
        _ => {}
    }
    let pem = std::fs::read(path).map_err(|e| {
        invalid(format!(
            "the CA certificates file {shown} cannot be read: {e}"
        ))
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| invalid(format!("{shown} is not PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(format!("{shown} holds no PEM certificate")));
    }
    Ok(certificates)
}

/// The desktop's proxy setting (GNOME's `org.gnome.system.proxy`, read with `gsettings`),
/// used when the environment names no proxy: a GUI app started from the desktop rarely has
/// `HTTPS_PROXY`. Only "manual" is followed (an automatic PAC script is not run); its
/// `ignore-hosts` go directly.
mod desktop {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Longest `gsettings` may take to answer, each time.
    const WAIT: Duration = Duration::from_secs(2);

    /// The environment names a proxy of its own (then reqwest follows it).
    fn environment_has_one() -> bool {
        [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "https_proxy",
            "http_proxy",
            "all_proxy",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    }

    /// One `gsettings get`, its value without quotes; `None` without gsettings or a schema.
    fn get(schema: &str, key: &str) -> Option<String> {
        let mut child = Command::new("gsettings")
            .args(["get", schema, key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(_)) | Err(_) => return None,
                Ok(None) if started.elapsed() > WAIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
        Some(out.trim().trim_matches('\'').to_owned())
    }

    /// `host:port` of one of GNOME's proxies, if set.
    fn endpoint(kind: &str) -> Option<String> {
        let schema = format!("org.gnome.system.proxy.{kind}");
        let host = get(&schema, "host").filter(|h| !h.is_empty())?;
        let port = get(&schema, "port")?
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)?;
        Some(format!("{host}:{port}"))
    }

    /// The hosts GNOME's `ignore-hosts` list (`['localhost', '127.0.0.0/8']`).
    fn ignored() -> String {
        get("org.gnome.system.proxy", "ignore-hosts")
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|h| h.trim().trim_matches('\'').to_owned())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The desktop's proxy for every request, when it has a manual one and the environment
    /// has none.
    pub(super) fn proxy() -> Option<reqwest::Proxy> {
        if !cfg!(target_os = "linux") || environment_has_one() {
            return None;
        }
        if get("org.gnome.system.proxy", "mode")? != "manual" {
            return None;
        }
        let url = endpoint("https")
            .or_else(|| endpoint("http"))
            .map(|at| format!("http://{at}"))
            .or_else(|| endpoint("socks").map(|at| format!("socks5h://{at}")))?;
        let no_proxy = reqwest::NoProxy::from_string(&ignored());
        let mut proxy = reqwest::Proxy::all(&url).ok()?.no_proxy(no_proxy);
        // GNOME keeps the HTTP proxy's login in its settings (not its keychain).
        let http = "org.gnome.system.proxy.http";
        if url.starts_with("http://") && get(http, "use-authentication").as_deref() == Some("true")
        {
            let user = get(http, "authentication-user").unwrap_or_default();
            let password = get(http, "authentication-password").unwrap_or_default();
            proxy = proxy.basic_auth(&user, &password);
        }
        tracing::info!(proxy = %url, "the desktop's proxy setting is used");
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual(url: &str) -> Network {
        Network {
            proxy: ProxyChoice::Manual(ManualProxy {
                url: url.into(),
                user: Some("me".into()),
                password: Some(Secret::new("pw")),
            }),
            extra_ca: None,
        }
    }

    #[test]
    fn proxies_are_http_https_or_socks5_and_bad_ones_are_named() {
        for good in [
            "http://127.0.0.1:3128",
            "https://proxy.example:8443",
            "socks5://10.0.0.1:1080",
            "socks5h://p:1080",
        ] {
            assert!(
                manual(good).builder(Duration::from_secs(1)).is_ok(),
                "{good}"
            );
        }
        for bad in ["ftp://p:21", "not a url", "http://"] {
            let err = manual(bad).builder(Duration::from_secs(1)).unwrap_err();
            assert_eq!(err.code(), "invalid_network", "{bad}");
            assert!(err.to_string().contains(bad.trim()), "{err}");
        }
        let err = manual("http://me:hunter2@p:3128")
            .builder(Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(err.code(), "invalid_network");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "nothing here").unwrap();
        let network = Network {
            proxy: ProxyChoice::System,
            extra_ca: Some(path.clone()),
        };
        let err = network.builder(Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.code(), "invalid_network");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = Network {
            extra_ca: Some(dir.path().join("gone.pem")),
            ..network
        };
        assert!(
            missing
                .builder(Duration::from_secs(1))
                .unwrap_err()
                .to_string()
                .contains("gone.pem")
        );
        let folder = Network {
            extra_ca: Some(dir.path().to_owned()),
            ..Network::default()
        };
        let err = folder.builder(Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("not a file"), "{err}");
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", manual("http://p:1"));
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn a_client_takes_another_network_for_all_its_clones_and_not_an_unusable_one() {
        let client = Client::new(&Network::default(), Duration::from_secs(1), |b| b).unwrap();
        let clone = client.clone();
        let proxied = Network {
            proxy: ProxyChoice::Manual(ManualProxy {
                url: "http://127.0.0.1:9".into(),
                user: None,
                password: None,
            }),
            extra_ca: None,
        };
        let unusable = Network {
            proxy: ProxyChoice::Manual(ManualProxy {
                url: "ftp://p:21".into(),
                user: None,
                password: None,
            }),
            extra_ca: None,
        };
        assert!(client.on(&unusable).is_err());
        let before = format!("{:?}", clone.current());
        client.take(client.on(&proxied).unwrap());
        let after = format!("{:?}", clone.current());
        assert_ne!(before, after, "the clone uses the new client");
        assert!(after.contains("127.0.0.1:9"), "{after}");
    }
}
