//! Huawei Cloud IAM `POST /v3.0/OS-CREDENTIAL/securitytokens`: temporary credentials for the
//! key's own user (`methods: ["token"]`) or, when an agency is configured, for that agency
//! (`methods: ["assume_role"]`, the session named after the user), limited by an OBS policy.
//! Authenticated as the vendor's SDK does with an AK/SK: the `SDK-HMAC-SHA256` signature over
//! every header sent. The answer is `{"credential": {access, secret, securitytoken,
//! expires_at}}`; errors are `{error_code, error_msg}` or `{"error": {code, message}}`.

use ferry_sign::{Secret, uri_encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ascii_json;
use super::broker::{
    Answered, BrokerError, Call, Cloud, Issued, SignedRequest, excerpt, rfc3339_expiry, unreadable,
};
use super::config::BrokerConfig;
use super::policy::{self, Policy};

/// The resource path of the call.
const PATH: &str = "/v3.0/OS-CREDENTIAL/securitytokens";
/// The signature's algorithm name.
const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Temporary credentials from Huawei Cloud IAM.
pub(crate) struct Huawei {
    /// Endpoint without a trailing slash.
    endpoint: String,
    /// `host[:port]` as the HTTP client sends it.
    host: String,
    domain_id: Option<String>,
    agency: Option<(String, String)>,
    access_key_id: String,
    secret: Secret,
}

impl Huawei {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        let host = reqwest::Url::parse(&config.endpoint)
            .ok()
            .and_then(|url| {
                let host = url.host_str()?.to_owned();
                Some(
                    url.port()
                        .map_or(host.clone(), |port| format!("{host}:{port}")),
                )
            })
            .unwrap_or_default();
        Self {
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            host,
            domain_id: config.domain_id.clone(),
            agency: config
                .agency_name
                .clone()
                .zip(config.agency_domain_name.clone()),
            access_key_id: config.access_key_id.clone(),
            secret: config.secret.clone(),
        }
    }

    fn body(&self, call: &Call) -> String {
        let identity = match &self.agency {
            None => Identity {
                methods: vec!["token"],
                token: Some(Token {
                    duration_seconds: call.duration_secs,
                }),
                assume_role: None,
                policy: &call.policy,
            },
            Some((agency_name, domain_name)) => Identity {
                methods: vec!["assume_role"],
                token: None,
                assume_role: Some(AssumeRole {
                    agency_name,
                    domain_name,
                    duration_seconds: call.duration_secs,
                    session_user: SessionUser {
                        name: &call.session_name,
                    },
                }),
                policy: &call.policy,
            },
        };
        ascii_json::to_string(&Body {
            auth: Auth { identity },
        })
    }
}

/// The request body; fields in the order of the SDK's models.
#[derive(Serialize)]
struct Body<'a> {
    auth: Auth<'a>,
}

#[derive(Serialize)]
struct Auth<'a> {
    identity: Identity<'a>,
}

#[derive(Serialize)]
struct Identity<'a> {
    methods: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assume_role: Option<AssumeRole<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<Token>,
    policy: &'a Policy,
}

#[derive(Serialize)]
struct Token {
    duration_seconds: u64,
}

#[derive(Serialize)]
struct AssumeRole<'a> {
    agency_name: &'a str,
    domain_name: &'a str,
    duration_seconds: u64,
    session_user: SessionUser<'a>,
}

#[derive(Serialize)]
struct SessionUser<'a> {
    name: &'a str,
}

fn hmac_hex(key: &[u8], data: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The canonical URI: each segment encoded (RFC 3986), ending with `/`.
fn canonical_uri(path: &str) -> String {
    let mut uri = path
        .split('/')
        .map(|segment| uri_encode(&ferry_sign::percent_decode(segment), false))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

impl Cloud for Huawei {
    fn request(&self, call: &Call) -> Result<SignedRequest, BrokerError> {
        let body = self.body(call);
        let mut headers = vec![
            (
                "Content-Type".to_owned(),
                "application/json;charset=utf-8".to_owned(),
            ),
            ("Host".to_owned(), self.host.clone()),
            (
                "X-Sdk-Date".to_owned(),
                ferry_sign::sigv4::amz_date(call.time),
            ),
        ];
        if let Some(domain_id) = &self.domain_id {
            headers.push(("X-Domain-Id".to_owned(), domain_id.clone()));
        }
        let mut canonical: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        canonical.sort();
        let signed_headers = canonical
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let header_block: String = canonical
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        let url = format!("{}{PATH}", self.endpoint);
        let path = reqwest::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| PATH.to_owned());
        let canonical_request = format!(
            "POST\n{}\n\n{header_block}\n{signed_headers}\n{}",
            canonical_uri(&path),
            hex::encode(Sha256::digest(body.as_bytes()))
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}",
            ferry_sign::sigv4::amz_date(call.time),
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let signature = hmac_hex(self.secret.expose().as_bytes(), &string_to_sign);
        headers.push((
            "Authorization".to_owned(),
            format!(
                "{ALGORITHM} Access={}, SignedHeaders={signed_headers}, Signature={signature}",
                self.access_key_id
            ),
        ));
        Ok(SignedRequest {
            method: "POST",
            url,
            headers,
            body: body.into_bytes(),
        })
    }

    fn answer(&self, status: u16, body: &[u8]) -> Result<Issued, Answered> {
        if !(200..300).contains(&status) {
            return Err(refusal(body).unwrap_or_else(|| Answered::Unreadable(excerpt(body))));
        }
        let answer: CredentialAnswer = serde_json::from_slice(body)
            .map_err(|err| unreadable("a securitytokens answer", status, &err, body))?;
        let c = answer.credential;
        let expiration = rfc3339_expiry("expires_at", &c.expires_at)?;
        Ok(Issued {
            access_key_id: c.access,
            secret_access_key: Secret::new(c.secret),
            security_token: Secret::new(c.securitytoken),
            expiration,
        })
    }

    fn policy(&self, bucket: &str, prefix: &str) -> Policy {
        policy::huawei(bucket, prefix)
    }
}

/// IAM's error bodies: `{error_code, error_msg}`, or the same (or Keystone's `{code, message,
/// title}`) inside `"error"`.
fn refusal(body: &[u8]) -> Option<Answered> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |v: &serde_json::Value, keys: &[&str]| {
        keys.iter().find_map(|k| match v.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let inner = value.get("error").unwrap_or(&value);
    let code = text(inner, &["error_code", "title", "code"])?;
    let message = text(inner, &["error_msg", "message"]).unwrap_or_default();
    Some(Answered::Refused { code, message })
}

#[derive(Deserialize)]
struct CredentialAnswer {
    credential: CredentialFields,
}

#[derive(Deserialize)]
struct CredentialFields {
    access: String,
    secret: String,
    securitytoken: String,
    expires_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes_keep_their_code() {
        let flat = br#"{"error_msg": "Request body is invalid.", "error_code": "IAM.0011"}"#;
        let nested = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert_eq!(
            refusal(flat),
            Some(Answered::Refused {
                code: "IAM.0011".into(),
                message: "Request body is invalid.".into()
            })
        );
        let Some(Answered::Refused { code, message }) = refusal(nested) else {
            panic!("a refusal");
        };
        assert_eq!(code, "Unauthorized");
        assert!(message.contains("authentication"));
        assert_eq!(refusal(b"<html>"), None);
    }

    #[test]
    fn canonical_uris_end_with_a_slash() {
        assert_eq!(canonical_uri(PATH), "/v3.0/OS-CREDENTIAL/securitytokens/");
        assert_eq!(canonical_uri("/a b/c"), "/a%20b/c/");
    }
}
