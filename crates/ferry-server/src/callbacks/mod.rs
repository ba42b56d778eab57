//! Provider-native upload callbacks, both ends. The app server's end: the callback spec a
//! grant carries ([`Callbacks::spec`]), and `POST /api/v1/callbacks/{oss,obs}`, which verifies
//! a callback (OSS: RSA-MD5 with a public key fetched only from an allowed host; OBS: HMAC with
//! a signing time), refuses forged, changed and replayed ones, and records the upload as
//! confirmed by the provider — idempotently, one history row per upload. The store's end:
//! [`Delivery`], which calls back from the OSS and OBS fronts as those vendors do.
//!
//! What "replayed" means here: a callback's signature covers its whole body, so a replay is
//! that same body sent again. Sent while its upload is recorded with the same object, it is
//! answered as the first one was (idempotent). Refused are: one whose grant token (`x:grant`,
//! signed by this server) is past its time, an OBS one whose signing time is stale, one for an
//! object the store no longer holds with that size and ETag (the key was written again since),
//! and one whose upload id was recorded for another object.

mod delivery;
mod keys;
mod obs;
mod oss;
mod receipt;
mod spec;

use std::sync::Arc;

use ferry_protocol::{Provider, UploadRecord};

pub(crate) use self::delivery::{Asked, Committed, Delivery, Outcome, Vendor};
use self::keys::PublicKeys;
pub(crate) use self::keys::{PUBLIC_KEY_PATH, StoreKey};
use self::spec::GrantToken;
use crate::error::{Error, Result};
use crate::uploads::Uploads;

/// Where OSS serves the public key of its callbacks.
pub(crate) const OSS_KEY_URL: &str = "https://gosspublic.alicdn.com/callback_pub_key_v1.pem";

/// How long after its grant expired a callback is still accepted (a multipart upload may
/// complete just after a refresh).
const GRACE_SECS: i64 = 15 * 60;

/// A callback as it arrived at the app server.
#[derive(Debug, Clone)]
pub(crate) struct Arrived {
    /// The request path as sent (not decoded).
    pub(crate) path: String,
    /// The raw query, if any.
    pub(crate) query: Option<String>,
    /// Header names lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Arrived {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The app server's side of callbacks.
pub(crate) struct Callbacks {
    /// Signs grant tokens (derived from the master key).
    key: [u8; 32],
    /// Checks OBS callbacks (derived from the master key, apart from the token key).
    obs_key: [u8; 32],
    /// The API's URL as stores reach it.
    api_url: String,
    /// The providers whose grants carry a callback.
    offered: Vec<Provider>,
    keys: PublicKeys,
}

impl Callbacks {
    /// `store_url` is the embedded store's URL, whose public key is trusted besides OSS's;
    /// grants of the `offered` providers carry a callback.
    pub(crate) fn new(
        (key, obs_key): ([u8; 32], [u8; 32]),
        api_url: String,
        store_url: &str,
        offered: Vec<Provider>,
    ) -> Result<Self> {
        Ok(Self {
            key,
            obs_key,
            api_url,
            offered,
            keys: PublicKeys::new(vec![
                OSS_KEY_URL.into(),
                format!("{}{PUBLIC_KEY_PATH}", store_url.trim_end_matches('/')),
            ])?,
        })
    }

    /// The callback a `provider` grant of `user_id` valid until `expires_at` carries, if the
    /// provider calls back.
    pub(crate) fn spec(
        &self,
        provider: Provider,
        user_id: i64,
        expires_at: time::OffsetDateTime,
    ) -> Option<serde_json::Value> {
        if !self.offered.contains(&provider) {
            return None;
        }
        let token = GrantToken {
            user_id,
            until: expires_at.unix_timestamp() + GRACE_SECS,
        };
        let spec = spec::build(provider, &self.api_url, token, &self.key)?;
        serde_json::to_value(spec).ok()
    }

    /// Verifies an OSS callback, then records it.
    pub(crate) async fn receive_oss(
        &self,
        uploads: &Uploads,
        arrived: Arrived,
    ) -> Result<UploadRecord> {
        let url = receipt::public_key_url(arrived.header("x-oss-pub-key-url")).map_err(refused)?;
        let key = self.keys.get(&url).await.map_err(refused)?;
        let signed = oss::string_to_sign(&arrived.path, arrived.query.as_deref(), &arrived.body);
        oss::verify(&key, &signed, arrived.header("authorization")).map_err(refused)?;
        self.record(uploads, &arrived).await
    }

    /// Verifies an OBS callback, then records it.
    pub(crate) async fn receive_obs(
        &self,
        uploads: &Uploads,
        arrived: Arrived,
    ) -> Result<UploadRecord> {
        obs::verify(
            &self.obs_key,
            &arrived.path,
            &arrived.body,
            arrived.header(obs::TIME_HEADER),
            arrived.header("authorization"),
            crate::db::now(),
        )
        .map_err(refused)?;
        self.record(uploads, &arrived).await
    }

    async fn record(&self, uploads: &Uploads, arrived: &Arrived) -> Result<UploadRecord> {
        let fields = receipt::Fields::parse(arrived.header("content-type"), &arrived.body)
            .map_err(Error::CallbackRefused)?;
        let token = GrantToken::decode(&fields.grant, &self.key).ok_or_else(|| {
            Error::CallbackRefused("its grant token is not one this server signed".into())
        })?;
        if crate::db::now() > token.until {
            return Err(Error::CallbackRefused(
                "its grant ended long ago: a replay of an old callback".into(),
            ));
        }
        uploads
            .confirm_by_provider(token.user_id, fields.confirmation())
            .await
    }
}

fn refused(err: impl std::fmt::Display) -> Error {
    Error::CallbackRefused(err.to_string())
}

/// The store side's shared parts, made once per server.
pub(crate) fn store_key(data_dir: &std::path::Path) -> Arc<StoreKey> {
    Arc::new(StoreKey::new(data_dir))
}

/// A captured callback to check, as `verify-callback` reads it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CallbackCase {
    /// `oss` (or `obs`).
    pub provider: String,
    /// The request method (callbacks are POSTs).
    #[serde(default = "post")]
    pub method: String,
    /// The request path as sent.
    pub path: String,
    /// The raw query, without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// The headers, `[name, value]`.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: String,
    /// OSS: the public key to check with (given, so nothing is fetched).
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// OBS: the base64 of the key the callback was signed with.
    #[serde(default)]
    pub secret_base64: Option<String>,
}

fn post() -> String {
    "POST".into()
}

/// Checks a captured callback's signature offline: `Ok` or why not. The OBS check ignores the
/// signing time's age (a captured callback is old by nature).
pub fn verify_callback(case: &CallbackCase) -> std::result::Result<(), String> {
    if !case.method.eq_ignore_ascii_case("POST") {
        return Err(format!("callbacks are POSTs, not {}", case.method));
    }
    let header = |name: &str| {
        case.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    match case.provider.as_str() {
        "oss" => {
            let pem = case
                .public_key_pem
                .as_deref()
                .ok_or("an oss case needs public_key_pem")?;
            let key = oss::public_key_from_pem(pem).map_err(|e| e.to_string())?;
            let signed =
                oss::string_to_sign(&case.path, case.query.as_deref(), case.body.as_bytes());
            oss::verify(&key, &signed, header("authorization")).map_err(|e| e.to_string())
        }
        "obs" => {
            use base64::Engine;
            let secret = case
                .secret_base64
                .as_deref()
                .ok_or("an obs case needs secret_base64")?;
            let key = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .map_err(|_| "secret_base64 is not base64".to_owned())?;
            let time = header(obs::TIME_HEADER);
            let at = time.and_then(|t| t.trim().parse::<i64>().ok()).unwrap_or(0);
            obs::verify(
                &key,
                &case.path,
                case.body.as_bytes(),
                time,
                header("authorization"),
                at,
            )
            .map_err(|e| e.to_string())
        }
        other => Err(format!("provider {other:?} is not oss or obs")),
    }
}
