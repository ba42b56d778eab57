//! App servers without Ferry's API: the ones people built from the vendors' tutorials, which
//! only hand out temporary credentials. A connection profile says where the token endpoint is,
//! how to authenticate to it, which shape its answer has, and what the answer leaves out (the
//! store's endpoint, region, bucket, prefix):
//!
//! - `aliyun_sts`: Alibaba's STS shape, `{AccessKeyId, AccessKeySecret, SecurityToken,
//!   Expiration}` at the top level (the tutorials' app server, often with `StatusCode`) or
//!   inside `Credentials` (STS's own answer, passed through);
//! - `huawei_workspace`: Huawei Workspace's authorize shape, `{server_end_point, bucket_name,
//!   directory, ak, sk, security_token, expires_at, policy}`.
//!
//! Such a server keeps no history and takes no confirmations: uploads are recorded on this
//! computer only. The session "token" kept in the keychain is the `Authorization` value sent to
//! the token endpoint (from the user's name and password, or a token the user was given).

use std::path::Path;

use base64::Engine as _;
use ferry_protocol::{Addressing, Grant, Provider, Role, SignatureVersion, User};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The answer shapes Ferry reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenShape {
    /// Alibaba STS credentials.
    AliyunSts,
    /// Huawei Workspace's authorize answer.
    HuaweiWorkspace,
}

/// How Ferry proves who it is to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with the name and password typed at sign-in.
    #[default]
    Basic,
    /// `Authorization: Bearer <the password field>` (a token the user was given).
    Bearer,
    /// Nothing (a server on a trusted network).
    None,
}

/// The HTTP method of the token request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TokenMethod {
    /// `GET` (the tutorials' choice).
    #[default]
    Get,
    /// `POST` with an empty JSON object.
    Post,
}

/// What the answer does not say about the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSite {
    /// The store's dialect.
    pub provider: Provider,
    /// The store's endpoint (`huawei_workspace`: taken from the answer when absent).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// How the bucket appears in URLs; virtual-hosted when absent.
    #[serde(default)]
    pub addressing: Option<Addressing>,
    /// OSS: `v4` (default) or `v1`.
    #[serde(default)]
    pub signature_version: SignatureVersion,
    /// The signing region.
    #[serde(default)]
    pub region: Option<String>,
    /// The bucket (`huawei_workspace`: taken from the answer when absent).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Keys start with this (`{user}` stands for the signed-in name); `huawei_workspace`: the
    /// answer's `directory` when absent.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A connection profile for a server that only hands out credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenServer {
    /// Where credentials are fetched; it names the server in the keychain and the journal.
    pub token_url: String,
    /// The answer's shape.
    pub shape: TokenShape,
    /// How Ferry authenticates.
    #[serde(default)]
    pub auth: TokenAuth,
    /// The request's method.
    #[serde(default)]
    pub method: TokenMethod,
    /// The store, as far as the answer leaves it out.
    pub storage: StorageSite,
}

impl TokenServer {
    /// Reads a profile from a TOML or JSON file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(format!(
            "reading the connection profile {}",
            path.display()
        )))?;
        Self::parse(&text)
    }

    /// Reads a profile from its text: JSON when it starts with `{`, TOML otherwise.
    pub fn parse(text: &str) -> Result<Self> {
        let parsed = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|detail| Error::Protocol {
            operation: "reading the connection profile",
            detail,
        })
    }

    /// The `Authorization` value for `username` and `password`, empty for [`TokenAuth::None`].
    pub fn authorization(&self, username: &str, password: &Secret) -> Secret {
        Secret::new(match self.auth {
            TokenAuth::Basic => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ),
            TokenAuth::Bearer => format!("Bearer {}", password.expose()),
            TokenAuth::None => String::new(),
        })
    }

    /// The credentials request, `Authorization` set unless empty.
    pub(crate) fn request(
        &self,
        http: &reqwest::Client,
        authorization: &Secret,
    ) -> reqwest::RequestBuilder {
        let request = match self.method {
            TokenMethod::Get => http.get(&self.token_url),
            TokenMethod::Post => http.post(&self.token_url).json(&serde_json::json!({})),
        };
        let request = request.header(reqwest::header::ACCEPT, "application/json");
        match authorization.expose() {
            "" => request,
            value => request.header(reqwest::header::AUTHORIZATION, value),
        }
    }

    /// The user a name stands for on this server: a stable id from the name (the server has
    /// no accounts Ferry can see).
    pub fn user(username: &str) -> User {
        let digest = Sha256::digest(username.as_bytes());
        let id = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX;
        User {
            id,
            name: username.to_owned(),
            role: Role::User,
        }
    }

    /// The grant an answer of this server stands for, as `user` fetched it.
    pub fn grant(&self, body: &[u8], user: &str) -> Result<Grant> {
        let bad = |detail: String| Error::Protocol {
            operation: "reading the token server's answer",
            detail,
        };
        let answer: Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let parsed = match self.shape {
            TokenShape::AliyunSts => aliyun(&answer),
            TokenShape::HuaweiWorkspace => huawei(&answer),
        }
        .map_err(bad)?;
        let site = &self.storage;
        let endpoint = site
            .endpoint
            .clone()
            .or(parsed.endpoint)
            .ok_or_else(|| bad("no store endpoint: set storage.endpoint".into()))?;
        let bucket = site
            .bucket
            .clone()
            .or(parsed.bucket)
            .ok_or_else(|| bad("no bucket: set storage.bucket".into()))?;
        let prefix = match site.prefix.as_deref() {
            Some(p) if p.contains("{user}") => p.replace("{user}", path_safe(user).map_err(bad)?),
            Some(p) => p.to_owned(),
            None => parsed.prefix.unwrap_or_default(),
        };
        Ok(Grant {
            provider: site.provider,
            endpoint,
            addressing: site.addressing.unwrap_or(Addressing::VirtualHosted),
            signature_version: site.signature_version,
            region: site.region.clone().unwrap_or_default(),
            bucket,
            prefix,
            access_key_id: parsed.access_key_id,
            secret_access_key: parsed.secret,
            security_token: parsed.token,
            expires_at: parsed.expires_at,
            policy: parsed.policy,
            callback: None,
        })
    }
}

/// The message of a token server's error answer: Huawei's `error_msg`, Alibaba's `Message` or
/// `ErrorMessage`, else the start of the body.
pub(crate) fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    field("error_msg")
        .or_else(|| field("Message"))
        .or_else(|| field("ErrorMessage"))
        .or_else(|| field("message"))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// What an answer says, before the profile fills the rest in.
struct Parsed {
    access_key_id: String,
    secret: String,
    token: String,
    expires_at: OffsetDateTime,
    endpoint: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    policy: Value,
}

fn text(value: &Value, name: &str) -> std::result::Result<String, String> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in the answer"))
}

/// Alibaba STS credentials, at the top level or inside `Credentials`.
fn aliyun(answer: &Value) -> std::result::Result<Parsed, String> {
    if let Some(status) = answer.get("StatusCode").and_then(Value::as_i64)
        && status != 200
    {
        let code = answer
            .get("ErrorCode")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = answer
            .get("ErrorMessage")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(format!("the server answered {status} {code}: {message}"));
    }
    let credentials = answer.get("Credentials").unwrap_or(answer);
    Ok(Parsed {
        access_key_id: text(credentials, "AccessKeyId")?,
        secret: text(credentials, "AccessKeySecret")?,
        token: text(credentials, "SecurityToken")?,
        expires_at: expiry(credentials.get("Expiration"))?,
        endpoint: None,
        bucket: None,
        prefix: None,
        policy: Value::Null,
    })
}

/// `user` as one segment of a key: a name with a slash, a dot segment or a control character
/// would put files in another folder than the user's own.
fn path_safe(user: &str) -> std::result::Result<&str, String> {
    let unsafe_name = user.is_empty()
        || user == "."
        || user == ".."
        || user.contains(['/', '\\'])
        || user.chars().any(char::is_control);
    if unsafe_name {
        return Err(format!(
            "the user name {user:?} cannot stand for {{user}} in the prefix: it must be one \
             folder name (no slash, not . or ..)"
        ));
    }
    Ok(user)
}

/// Huawei Workspace's authorize answer.
fn huawei(answer: &Value) -> std::result::Result<Parsed, String> {
    let host = text(answer, "server_end_point")?;
    let endpoint = if host.contains("://") {
        host
    } else {
        format!("https://{host}")
    };
    // The store is named by the answer, not the profile: the same transport rule applies.
    let url = reqwest::Url::parse(&endpoint)
        .map_err(|_| format!("server_end_point {endpoint:?} is not a URL"))?;
    crate::profile::check_transport(&url, false).map_err(|err| {
        format!("server_end_point {endpoint:?}: {err} (https://, or http:// to this computer)")
    })?;
    let directory = answer
        .get("directory")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/');
    let prefix = match directory {
        "" => String::new(),
        d if d.ends_with('/') => d.to_owned(),
        d => format!("{d}/"),
    };
    Ok(Parsed {
        access_key_id: text(answer, "ak")?,
        secret: text(answer, "sk")?,
        token: text(answer, "security_token")?,
        expires_at: expiry(answer.get("expires_at"))?,
        endpoint: Some(endpoint),
        bucket: Some(text(answer, "bucket_name")?),
        prefix: Some(prefix),
        policy: answer.get("policy").cloned().unwrap_or(Value::Null),
    })
}

/// An expiry as RFC 3339 text (fractions of a second allowed), or Unix seconds or
/// milliseconds.
fn expiry(value: Option<&Value>) -> std::result::Result<OffsetDateTime, String> {
    let at = match value {
        Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).ok(),
        Some(Value::Number(n)) => n.as_i64().and_then(|n| {
            let secs = if n > 100_000_000_000 { n / 1000 } else { n };
            OffsetDateTime::from_unix_timestamp(secs).ok()
        }),
        _ => None,
    };
    at.ok_or_else(|| format!("no readable expiry in the answer: {value:?}"))
}

#[cfg(test)]
mod tests;
