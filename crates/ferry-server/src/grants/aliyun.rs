//! Alibaba Cloud STS `AssumeRole`, RPC style: every parameter in the query of a POST, signed
//! with HMAC-SHA1 over the sorted, percent-encoded parameters (`SignatureVersion` 1.0), with a
//! `SignatureNonce` and `Timestamp`; the answer is JSON (`Credentials`), errors carry `Code`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_sign::{Secret, uri_encode};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;
use time::macros::format_description;

use super::broker::{
    Answered, BrokerError, Call, Cloud, Issued, SignedRequest, excerpt, rfc3339_expiry, unreadable,
};
use super::config::BrokerConfig;
use super::policy::{self, Policy};

/// The STS API version.
const VERSION: &str = "2015-04-01";

/// AssumeRole against Alibaba Cloud STS.
pub(crate) struct Aliyun {
    endpoint: String,
    region: String,
    role_arn: String,
    access_key_id: String,
    secret: Secret,
}

impl Aliyun {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        Self {
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            region: config.region.clone(),
            role_arn: config.role_arn.clone().unwrap_or_default(),
            access_key_id: config.access_key_id.clone(),
            secret: config.secret.clone(),
        }
    }
}

/// `name=value` pairs, percent-encoded (RFC 3986) and sorted by name, joined with `&`.
fn canonical_query(params: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (uri_encode(name, false), uri_encode(value, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Base64 HMAC-SHA1 of `POST&%2F&<encoded canonical query>` keyed with `secret&`.
fn signature(secret: &str, method: &str, canonical: &str) -> String {
    let string_to_sign = format!(
        "{method}&{}&{}",
        uri_encode("/", false),
        uri_encode(canonical, false)
    );
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

impl Cloud for Aliyun {
    fn request(&self, call: &Call) -> Result<SignedRequest, BrokerError> {
        let timestamp = call
            .time
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .map_err(|_| BrokerError::BadAnswer {
                broker: "aliyun",
                detail: "the clock cannot be formatted".into(),
            })?;
        let canonical = canonical_query(&[
            ("AccessKeyId", self.access_key_id.clone()),
            ("Action", "AssumeRole".into()),
            ("DurationSeconds", call.duration_secs.to_string()),
            ("Format", "JSON".into()),
            ("Policy", call.policy.to_json()),
            ("RegionId", self.region.clone()),
            ("RoleArn", self.role_arn.clone()),
            ("RoleSessionName", call.session_name.clone()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            ("SignatureNonce", call.nonce.clone()),
            ("SignatureType", String::new()),
            ("SignatureVersion", "1.0".into()),
            ("Timestamp", timestamp),
            ("Version", VERSION.into()),
        ]);
        let signature = signature(self.secret.expose(), "POST", &canonical);
        Ok(SignedRequest {
            method: "POST",
            url: format!(
                "{}/?{canonical}&Signature={}",
                self.endpoint,
                uri_encode(&signature, false)
            ),
            headers: vec![
                ("x-acs-action".into(), "AssumeRole".into()),
                ("x-acs-version".into(), VERSION.into()),
            ],
            body: Vec::new(),
        })
    }

    fn answer(&self, status: u16, body: &[u8]) -> Result<Issued, Answered> {
        if !(200..300).contains(&status) {
            return match serde_json::from_slice::<ErrorAnswer>(body) {
                Ok(error) => Err(Answered::Refused {
                    code: error.code,
                    message: error.message.unwrap_or_default(),
                }),
                Err(_) => Err(Answered::Unreadable(excerpt(body))),
            };
        }
        let answer: AssumeRoleAnswer = serde_json::from_slice(body)
            .map_err(|err| unreadable("an AssumeRole answer", status, &err, body))?;
        let c = answer.credentials;
        let expiration = rfc3339_expiry("Expiration", &c.expiration)?;
        Ok(Issued {
            access_key_id: c.access_key_id,
            secret_access_key: Secret::new(c.access_key_secret),
            security_token: Secret::new(c.security_token),
            expiration,
        })
    }

    fn policy(&self, bucket: &str, prefix: &str) -> Policy {
        policy::aliyun(bucket, prefix)
    }

    fn transient_code(&self, code: &str) -> bool {
        code.starts_with("Throttling") || matches!(code, "ServiceUnavailable" | "InternalError")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleAnswer {
    credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorAnswer {
    code: String,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_rpc_documentation() {
        // Alibaba's RPC signature documentation signs these parameters with secret
        // "testsecret" (its worked example of the algorithm).
        let canonical = canonical_query(&[
            ("AccessKeyId", "testid".into()),
            ("Action", "DescribeRegions".into()),
            ("Format", "XML".into()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            (
                "SignatureNonce",
                "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
            ),
            ("SignatureVersion", "1.0".into()),
            ("Timestamp", "2016-02-23T12:46:24Z".into()),
            ("Version", "2014-05-26".into()),
        ]);
        assert_eq!(
            signature("testsecret", "GET", &canonical),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn percent_encoding_follows_rfc_3986() {
        let canonical = canonical_query(&[("Policy", "a b*c~d/é+".into())]);
        assert_eq!(canonical, "Policy=a%20b%2Ac~d%2F%C3%A9%2B");
    }
}
