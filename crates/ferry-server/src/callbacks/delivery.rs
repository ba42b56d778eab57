//! The embedded store calling back as OSS and OBS do. A PutObject or CompleteMultipartUpload
//! that carries `x-oss-callback` (with `x-oss-callback-var`) or `x-obs-callback` is checked
//! before any byte is stored — a malformed callback, or one aimed anywhere but the app server,
//! is refused with `InvalidArgument` — and after the object is committed the store POSTs the
//! filled body template to the callback URL, signed (OSS: RSA-MD5 with the store's key, whose
//! URL goes in `x-oss-pub-key-url`; OBS: see [`super::obs`]). One attempt, 5 s, no redirects:
//! the client then gets the callback's answer, or `203 CallbackFailed` with the object kept.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ferry_protocol::Provider;
use serde::Deserialize;

use super::keys::{StoreKey, normalized};
use super::{obs, oss, spec};

/// How long the store waits for the app server's answer (OSS's own limit).
const CALLBACK_TIME: Duration = Duration::from_secs(5);
/// Largest callback answer passed on to the client (OSS's limit is 3 MB).
const MAX_ANSWER: usize = 3 * 1024 * 1024;
/// Largest encoded callback or callback-var header (OSS's limit is 5 KB).
const MAX_HEADER: usize = 5 * 1024;

/// Which vendor's callback a front performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vendor {
    Oss,
    Obs,
}

/// The callback parameter, as both vendors spell it (OSS camelCase, OBS also in capitals).
#[derive(Deserialize)]
struct Param {
    #[serde(alias = "CallbackUrl")]
    #[serde(rename = "callbackUrl")]
    url: String,
    #[serde(alias = "CallbackBody")]
    #[serde(rename = "callbackBody")]
    body: String,
    #[serde(alias = "CallbackBodyType")]
    #[serde(rename = "callbackBodyType", default)]
    body_type: Option<String>,
}

/// A callback a request asked for, checked.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    url: String,
    body: String,
    body_type: String,
    vars: Vec<(String, String)>,
}

/// What a committed object looks like to the callback's variables.
#[derive(Debug, Clone)]
pub(crate) struct Committed<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    /// As the dialect shows it (OSS: upper-case hex), without quotes.
    pub(crate) etag: &'a str,
    pub(crate) size: u64,
    pub(crate) mime_type: &'a str,
}

/// How a callback went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The app server answered 200 with this body and content type.
    Answered { body: Bytes, content_type: String },
    /// It did not (unreachable, too slow, or not 200); why.
    Failed(String),
}

/// Performs the store's callbacks.
pub(crate) struct Delivery {
    key: Arc<StoreKey>,
    obs_key: [u8; 32],
    /// The URL of the store's public key, for `x-oss-pub-key-url`.
    public_key_url: String,
    /// The URLs callbacks may go to (normal form): the app server's callback endpoints.
    allowed: Vec<String>,
    http: reqwest::Client,
}

fn decode_json<T: serde::de::DeserializeOwned>(name: &str, value: &str) -> Result<T, String> {
    if value.len() > MAX_HEADER {
        return Err(format!("{name} is larger than 5 KB"));
    }
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|_| format!("{name} is not base64"))?;
    serde_json::from_slice(&bytes).map_err(|err| format!("{name} is not the expected JSON: {err}"))
}

impl Delivery {
    pub(crate) fn new(
        key: Arc<StoreKey>,
        obs_key: [u8; 32],
        public_key_url: String,
        allowed: Vec<String>,
    ) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIME)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| crate::Error::Io {
                context: "starting the callback client".into(),
                source: std::io::Error::other(err),
            })?;
        Ok(Self {
            key,
            obs_key,
            public_key_url,
            allowed: allowed
                .iter()
                .flat_map(|base| {
                    [Provider::Oss, Provider::Obs]
                        .into_iter()
                        .filter_map(move |provider| {
                            normalized(&format!(
                                "{}{}",
                                base.trim_end_matches('/'),
                                spec::path(provider)?
                            ))
                        })
                })
                .collect(),
            http,
        })
    }

    /// The store's public key in PEM (made on first use).
    pub(crate) async fn public_key_pem(&self) -> crate::Result<String> {
        Ok(self.key.get().await?.1.clone())
    }

    /// The callback a request asks for through `header`, checked; `Ok(None)` when it asks for
    /// none, `Err` (a sentence) when what it asks for is malformed or goes elsewhere than the
    /// app server.
    pub(crate) fn asked<'a>(
        &self,
        vendor: Vendor,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Asked>, String> {
        let (name, vars_name) = match vendor {
            Vendor::Oss => ("x-oss-callback", Some("x-oss-callback-var")),
            Vendor::Obs => ("x-obs-callback", None),
        };
        let Some(value) = header(name) else {
            return Ok(None);
        };
        let param: Param = decode_json(name, value)?;
        let mut vars = Vec::new();
        if let Some(raw) = vars_name.and_then(&header) {
            let map: std::collections::BTreeMap<String, String> =
                decode_json("x-oss-callback-var", raw)?;
            for (var, value) in map {
                if !var.starts_with("x:") || var.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(format!(
                        "callback variable {var:?} must be x: and lower case"
                    ));
                }
                vars.push((var, value));
            }
        }
        let body_type = param.body_type.unwrap_or_else(|| spec::FORM.to_owned());
        if body_type != spec::FORM && body_type != "application/json" {
            return Err(format!("callbackBodyType {body_type:?} is not supported"));
        }
        if param.body.is_empty() {
            return Err("callbackBody is empty".into());
        }
        Ok(Some(Asked {
            url: self.allowed_url(&param.url)?,
            body: param.body,
            body_type,
            vars,
        }))
    }

    /// The one callback URL (in normal form), if it is one of the app server's callback
    /// endpoints: the store calls nothing else, not even another path of the API.
    fn allowed_url(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        if value.contains(';') {
            return Err("the store calls back one URL, not a list".into());
        }
        let url = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        match normalized(&url) {
            Some(url) if self.allowed.contains(&url) => Ok(url),
            _ => Err(format!(
                "the callback URL {url} is not the app server's callback endpoint; the store \
                 calls nothing else"
            )),
        }
    }

    /// Calls back for `object`: one attempt, [`CALLBACK_TIME`] at most.
    pub(crate) async fn deliver(
        &self,
        vendor: Vendor,
        asked: &Asked,
        object: &Committed<'_>,
    ) -> Outcome {
        let body = fill(asked, vendor, object);
        match self.send(vendor, asked, body).await {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Failed(reason),
        }
    }

    async fn send(&self, vendor: Vendor, asked: &Asked, body: String) -> Result<Outcome, String> {
        let (path, query) = path_and_query(&asked.url);
        let mut request = self
            .http
            .post(&asked.url)
            .header("content-type", &asked.body_type);
        request = match vendor {
            Vendor::Oss => {
                let (key, _) = self
                    .key
                    .get()
                    .await
                    .map_err(|err| format!("the store has no signing key: {err}"))?;
                let signed = oss::string_to_sign(path, query, body.as_bytes());
                let signature =
                    oss::sign(key, &signed).map_err(|err| format!("signing failed: {err}"))?;
                request
                    .header("authorization", signature)
                    .header("x-oss-pub-key-url", STANDARD.encode(&self.public_key_url))
            }
            Vendor::Obs => {
                let time = crate::db::now().to_string();
                let signature = obs::sign(&self.obs_key, path, body.as_bytes(), &time);
                request
                    .header("authorization", signature)
                    .header(obs::TIME_HEADER, time)
            }
        };
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| format!("the callback to {} failed: {err}", asked.url))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let answer = read_limited(response).await?;
        if status != reqwest::StatusCode::OK {
            return Ok(Outcome::Failed(format!(
                "the callback answered HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            )));
        }
        Ok(Outcome::Answered {
            body: answer,
            content_type,
        })
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Bytes, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("reading the callback's answer failed: {err}"))?
    {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_ANSWER {
            return Err("the callback's answer is larger than 3 MB".into());
        }
    }
    Ok(Bytes::from(out))
}

/// The raw path and query of a URL.
fn path_and_query(url: &str) -> (&str, Option<&str>) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let target = rest.find('/').map_or("/", |at| &rest[at..]);
    let target = target.split('#').next().unwrap_or(target);
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// The body template with every `${var}` / `$(var)` replaced: system variables from the
/// object, custom `x:` ones from the request, anything unknown empty. Values are URL-encoded
/// in a form body and JSON strings in a JSON one.
fn fill(asked: &Asked, vendor: Vendor, object: &Committed<'_>) -> String {
    let json = asked.body_type == "application/json";
    let lookup = |name: &str| -> String {
        let system = match (vendor, name) {
            (_, "bucket") => Some(object.bucket.to_owned()),
            (Vendor::Oss, "object") | (Vendor::Obs, "key") => Some(object.key.to_owned()),
            (_, "etag") => Some(object.etag.to_owned()),
            (Vendor::Oss, "size") | (Vendor::Obs, "fsize" | "size") => {
                Some(object.size.to_string())
            }
            (Vendor::Oss, "mimeType") => Some(object.mime_type.to_owned()),
            (Vendor::Obs, "fname") => object.key.rsplit('/').next().map(str::to_owned),
            _ => None,
        };
        let value = system
            .or_else(|| {
                asked
                    .vars
                    .iter()
                    .find(|(var, _)| var == name)
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default();
        if json {
            serde_json::Value::String(value).to_string()
        } else {
            ferry_sign::uri_encode(&value, false)
        }
    };
    let mut out = String::with_capacity(asked.body.len());
    let mut rest = asked.body.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let close = match after.chars().next() {
            Some('{') => Some('}'),
            Some('(') => Some(')'),
            _ => None,
        };
        match close.and_then(|c| after[1..].find(c).map(|end| (end, c))) {
            Some((end, _)) => {
                out.push_str(&lookup(&after[1..=end]));
                rest = &after[end + 2..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        let dir = std::env::temp_dir();
        Delivery::new(
            Arc::new(StoreKey::new(&dir)),
            [0; 32],
            "http://127.0.0.1:2/_ferry/callback_pub_key.pem".into(),
            vec!["http://127.0.0.1:1".into()],
        )
        .unwrap()
    }

    fn encoded(value: serde_json::Value) -> String {
        STANDARD.encode(value.to_string())
    }

    #[test]
    fn only_the_app_servers_origin_is_called() {
        let delivery = delivery();
        let ask = |url: &str| {
            let header = encoded(serde_json::json!({"callbackUrl": url, "callbackBody": "a"}));
            delivery
                .asked(Vendor::Oss, |name| {
                    (name == "x-oss-callback").then_some(header.as_str())
                })
                .map(|asked| asked.map(|a| a.url))
        };
        assert_eq!(
            ask("http://127.0.0.1:1/api/v1/callbacks/oss"),
            Ok(Some("http://127.0.0.1:1/api/v1/callbacks/oss".into()))
        );
        assert_eq!(
            ask("127.0.0.1:1/api/v1/callbacks/oss"),
            Ok(Some("http://127.0.0.1:1/api/v1/callbacks/oss".into()))
        );
        for url in [
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:1/api/v1/sessions",
            "http://127.0.0.1:1/api/v1/callbacks/oss?next=/api/v1/sessions",
            "http://127.0.0.1:1/api/v1/callbacks/%6fss",
            "http://127.0.0.1:2/api/v1/callbacks/oss",
            "http://169.254.169.254/latest",
            "http://127.0.0.1:1@evil.test/",
            "http://127.0.0.1:1/a;http://evil.test/",
            "file:///etc/passwd",
        ] {
            assert!(ask(url).is_err(), "{url}");
        }
        assert!(delivery.asked(Vendor::Oss, |_| None).unwrap().is_none());
    }

    #[test]
    fn malformed_callbacks_are_refused() {
        let delivery = delivery();
        let with = |callback: &str, vars: Option<&str>| {
            delivery
                .asked(Vendor::Oss, |name| match name {
                    "x-oss-callback" => Some(callback),
                    "x-oss-callback-var" => vars,
                    _ => None,
                })
                .map(|_| ())
        };
        assert!(with("not base64!", None).is_err());
        assert!(with(&STANDARD.encode("{"), None).is_err());
        let good = encoded(serde_json::json!({
            "callbackUrl": "http://127.0.0.1:1/api/v1/callbacks/oss", "callbackBody": "a=${x:a}"
        }));
        assert!(with(&good, Some(&encoded(serde_json::json!({"x:a": "1"})))).is_ok());
        assert!(with(&good, Some(&encoded(serde_json::json!({"a": "1"})))).is_err());
        assert!(with(&good, Some(&encoded(serde_json::json!({"x:A": "1"})))).is_err());
        let json_type = encoded(serde_json::json!({
            "callbackUrl": "http://127.0.0.1:1/api/v1/callbacks/oss", "callbackBody": "a", "callbackBodyType": "text/xml"
        }));
        assert!(with(&json_type, None).is_err());
    }

    #[test]
    fn templates_are_filled_per_vendor_and_body_type() {
        let object = Committed {
            bucket: "ferry",
            key: "uploads/1/a b&c.txt",
            etag: "ABC",
            size: 5,
            mime_type: "text/plain",
        };
        let asked = Asked {
            url: String::new(),
            body: "b=${bucket}&o=${object}&s=${size}&m=${mimeType}&n=${x:name}&u=${unknown}&$x"
                .into(),
            body_type: spec::FORM.into(),
            vars: vec![("x:name".into(), "é/1".into())],
        };
        assert_eq!(
            fill(&asked, Vendor::Oss, &object),
            "b=ferry&o=uploads%2F1%2Fa%20b%26c.txt&s=5&m=text%2Fplain&n=%C3%A9%2F1&u=&$x"
        );
        let obs = Asked {
            body: "k=$(key)&e=$(etag)&s=$(fsize)".into(),
            ..asked.clone()
        };
        assert_eq!(
            fill(&obs, Vendor::Obs, &object),
            "k=uploads%2F1%2Fa%20b%26c.txt&e=ABC&s=5"
        );
        let json = Asked {
            body: "{\"o\":${object},\"n\":${x:name}}".into(),
            body_type: "application/json".into(),
            ..asked
        };
        assert_eq!(
            fill(&json, Vendor::Oss, &object),
            "{\"o\":\"uploads/1/a b&c.txt\",\"n\":\"é/1\"}"
        );
    }

    #[test]
    fn paths_and_queries_of_callback_urls() {
        assert_eq!(path_and_query("http://h:1/a/b?c=1"), ("/a/b", Some("c=1")));
        assert_eq!(path_and_query("http://h:1"), ("/", None));
    }
}
