//! The keys of callbacks: the embedded store's RSA key (made once, kept beside the master key,
//! mode 0600), and the public keys the app server fetches to check OSS callbacks — only from
//! the exact URLs on its allow-list, with a bounded fetch, cached.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{PrivateKey, PublicKey};
use tokio::sync::OnceCell;

use super::oss;
use crate::error::{Error, Result};

/// Size of the store's key.
const STORE_KEY_BITS: usize = 2048;
/// How long a fetched public key is trusted before it is fetched again.
const KEY_TTL: Duration = Duration::from_secs(3600);
/// The most a public key fetch may take, and the most bytes it may bring.
const FETCH_TIME: Duration = Duration::from_secs(5);
const MAX_KEY_BYTES: usize = 16 * 1024;

/// The path on the store's listener where its public key is served.
pub(crate) const PUBLIC_KEY_PATH: &str = "/_ferry/callback_pub_key.pem";

/// The embedded store's signing key, made on first use (generating one takes a moment, and
/// most runs never call back).
pub(crate) struct StoreKey {
    path: PathBuf,
    key: OnceCell<(PrivateKey, String)>,
}

impl StoreKey {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("callback.key"),
            key: OnceCell::new(),
        }
    }

    /// The private key and its public half in PEM.
    pub(crate) async fn get(&self) -> Result<&(PrivateKey, String)> {
        self.key
            .get_or_try_init(|| async {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || load_or_create(&path))
                    .await
                    .map_err(|err| Error::Io {
                        context: "making the callback key".into(),
                        source: std::io::Error::other(err.to_string()),
                    })?
            })
            .await
    }
}

fn key_error(context: &str) -> impl FnOnce(String) -> Error + '_ {
    move |message| Error::Io {
        context: context.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    }
}

fn load_or_create(path: &Path) -> Result<(PrivateKey, String)> {
    let key = match std::fs::read_to_string(path) {
        Ok(pem) => PrivateKey::from_pkcs8_pem(&pem)
            .map_err(|err| key_error("reading the callback key")(err.to_string()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::new(&mut getrandom::SysRng, STORE_KEY_BITS)
                .map_err(|err| key_error("making the callback key")(err.to_string()))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|err| key_error("writing the callback key")(err.to_string()))?;
            write_private(path, pem.as_bytes())?;
            key
        }
        Err(err) => return Err(Error::io("reading the callback key")(err)),
    };
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|err| key_error("encoding the callback public key")(err.to_string()))?;
    Ok((key, public))
}

/// Writes a new secret file readable by its owner only; an existing one is never replaced.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(Error::io("creating the callback key"))?;
    std::io::Write::write_all(&mut file, bytes).map_err(Error::io("writing the callback key"))
}

/// Why a public key could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyFetchError {
    #[error("x-oss-pub-key-url is missing or not base64 of a URL")]
    BadUrl,
    #[error("the public key URL {0} is not on the allow-list")]
    NotAllowed(String),
    #[error("the public key could not be fetched from {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(transparent)]
    BadKey(#[from] oss::SignatureError),
}

/// `url` in normal form (scheme and host in lower case, default port dropped, dot segments
/// resolved), if it is a plain http(s) URL: no user info, query or fragment. Allow-lists
/// compare URLs in this form, exactly.
pub(crate) fn normalized(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let plain = matches!(parsed.scheme(), "http" | "https")
        && parsed.host().is_some()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    plain.then(|| parsed.to_string())
}

/// Public keys fetched for checking OSS callbacks.
pub(crate) struct PublicKeys {
    /// The key URLs a callback may name (normal form), each with the URL it is fetched from:
    /// an https URL may also be named with `http://` (OSS's documents do) and is still
    /// fetched over https. Nothing else is ever fetched, so the cache holds these at most.
    allowed: Vec<(String, String)>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (PublicKey, Instant)>>,
}

impl PublicKeys {
    pub(crate) fn new(allowed: Vec<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIME)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| Error::Io {
                context: "starting the key fetcher".into(),
                source: std::io::Error::other(err),
            })?;
        Ok(Self {
            allowed: allowed
                .iter()
                .filter_map(|url| normalized(url))
                .flat_map(|url| {
                    let plain = url
                        .strip_prefix("https://")
                        .map(|rest| (format!("http://{rest}"), url.clone()));
                    [(url.clone(), url)].into_iter().chain(plain)
                })
                .collect(),
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, url: &str) -> Option<PublicKey> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(url)
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .map(|(key, _)| key.clone())
    }

    /// The key at `url`, if `url` is one of the allowed key URLs: from the cache, or fetched
    /// (at most [`MAX_KEY_BYTES`], within [`FETCH_TIME`], no redirects).
    pub(crate) async fn get(&self, url: &str) -> Result<PublicKey, KeyFetchError> {
        let fetched = normalized(url).and_then(|url| {
            self.allowed
                .iter()
                .find(|(named, _)| *named == url)
                .map(|(_, fetched)| fetched.clone())
        });
        let Some(fetched) = fetched else {
            return Err(KeyFetchError::NotAllowed(url.to_owned()));
        };
        if let Some(key) = self.cached(&fetched) {
            return Ok(key);
        }
        let pem = self.fetch(&fetched).await?;
        let key = oss::public_key_from_pem(&pem)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(fetched, (key.clone(), Instant::now()));
        Ok(key)
    }

    async fn fetch(&self, url: &str) -> Result<String, KeyFetchError> {
        let unreachable = |reason: String| KeyFetchError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| unreachable(err.to_string()))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| unreachable(err.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_KEY_BYTES {
                return Err(unreachable("the answer is larger than a key".into()));
            }
        }
        String::from_utf8(body).map_err(|_| unreachable("the answer is not text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_in_normal_form_and_plain_ones_only() {
        assert_eq!(
            normalized("https://GossPublic.alicdn.com:443/callback_pub_key_v1.pem").as_deref(),
            Some("https://gosspublic.alicdn.com/callback_pub_key_v1.pem")
        );
        assert_eq!(
            normalized("http://127.0.0.1:9/a/../b").as_deref(),
            Some("http://127.0.0.1:9/b")
        );
        for refused in [
            "http://127.0.0.1:9/a?b",
            "http://127.0.0.1:9/a#b",
            "http://gosspublic.alicdn.com@evil.test/k",
            "ftp://gosspublic.alicdn.com/k",
            "no scheme",
        ] {
            assert_eq!(normalized(refused), None, "{refused}");
        }
    }

    #[tokio::test]
    async fn a_key_url_off_the_allow_list_is_never_fetched() {
        let keys = PublicKeys::new(vec![
            "https://gosspublic.alicdn.com/callback_pub_key_v1.pem".into(),
            "http://127.0.0.1:1/_ferry/callback_pub_key.pem".into(),
        ])
        .unwrap();
        for url in [
            "https://gosspublic.alicdn.com.evil.test/k.pem",
            "http://127.0.0.1:1/k.pem",
            "http://127.0.0.1:1/api/v1/sessions",
            "https://gosspublic.alicdn.com/?n=1",
            "https://gosspublic.alicdn.com/other.pem",
            "https://evil.test/https://gosspublic.alicdn.com/",
        ] {
            assert_eq!(
                keys.get(url).await.unwrap_err(),
                KeyFetchError::NotAllowed(url.into())
            );
        }
    }

    #[tokio::test]
    async fn the_store_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = StoreKey::new(dir.path());
        let public = first.get().await.unwrap().1.clone();
        let again = StoreKey::new(dir.path());
        assert_eq!(again.get().await.unwrap().1, public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("callback.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(oss::public_key_from_pem(&public).is_ok());
    }
}
