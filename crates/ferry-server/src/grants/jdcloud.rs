//! JD Cloud STS `POST /v1/sessionToken:assumeRole` with a JSON body and a session policy,
//! signed as JD Cloud's SDK (jdcloud-sdk 1.6) signs it today: `JDCLOUD3-HMAC-SHA256` over
//! `content-type` and `host`, region `jdcloud-api`, with `x-jdcloud-date` and `x-jdcloud-nonce`
//! sent beside it. The answer is `{"result": {"credentials": {accessKey, secretKey,
//! sessionToken, expiration}}}`; errors are `{"error": {code, status, message}}`.

use ferry_sign::{Secret, uri_encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::ascii_json;
use super::broker::{Answered, BrokerError, Call, Cloud, Issued, SignedRequest, unreadable};
use super::config::BrokerConfig;
use super::policy::{self, Policy};

/// The resource path of the call.
const PATH: &str = "/v1/sessionToken:assumeRole";
/// The signature's algorithm name (also sent as a header of that name, as the SDK does).
const ALGORITHM: &str = "JDCLOUD3-HMAC-SHA256";
/// The signing region of calls whose parameters name none.
const REGION: &str = "jdcloud-api";

/// AssumeRole against JD Cloud STS.
pub(crate) struct Jdcloud {
    endpoint: String,
    host: String,
    role_jrn: String,
    access_key_id: String,
    secret: Secret,
}

impl Jdcloud {
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
            role_jrn: config.role_arn.clone().unwrap_or_default(),
            access_key_id: config.access_key_id.clone(),
            secret: config.secret.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    assume_role_info: AssumeRoleInfo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssumeRoleInfo<'a> {
    role_jrn: &'a str,
    role_session_name: &'a str,
    policy: String,
    duration_seconds: u64,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The path decoded, repeated slashes collapsed, then encoded keeping `/` and `~`.
fn canonical_uri(path: &str) -> String {
    let decoded = ferry_sign::percent_decode(&path.replace('+', " "));
    let mut collapsed = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    let encoded = uri_encode(&collapsed, true);
    if encoded.starts_with('/') {
        encoded
    } else {
        format!("/{encoded}")
    }
}

impl Cloud for Jdcloud {
    fn request(&self, call: &Call) -> Result<SignedRequest, BrokerError> {
        let body = ascii_json::to_string(&Body {
            assume_role_info: AssumeRoleInfo {
                role_jrn: &self.role_jrn,
                role_session_name: &call.session_name,
                policy: call.policy.to_json(),
                duration_seconds: call.duration_secs,
            },
        });
        let url = format!("{}{PATH}", self.endpoint);
        let path = reqwest::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| PATH.to_owned());
        let date = ferry_sign::sigv4::amz_date(call.time);
        let payload = hex::encode(Sha256::digest(body.as_bytes()));
        let content_type = "application/json";
        let canonical_request = format!(
            "POST\n{}\n\ncontent-type:{content_type}\nhost:{}\n\ncontent-type;host\n{payload}",
            canonical_uri(&path),
            self.host
        );
        let scope = format!("{}/{REGION}/sts/jdcloud3_request", &date[..8]);
        let string_to_sign = format!(
            "{ALGORITHM}\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(
            format!("JDCLOUD3{}", self.secret.expose()).as_bytes(),
            &date[..8],
        );
        for part in [REGION, "sts", "jdcloud3_request"] {
            key = hmac(&key, part);
        }
        let signature = hex::encode(hmac(&key, &string_to_sign));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders=content-type;host, Signature={signature}",
            self.access_key_id
        );
        Ok(SignedRequest {
            method: "POST",
            url,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("Authorization".into(), authorization),
                ("x-jdcloud-date".into(), date),
                ("x-jdcloud-content-sha256".into(), payload),
                (ALGORITHM.into(), ALGORITHM.into()),
                ("x-jdcloud-nonce".into(), call.nonce.clone()),
            ],
            body: body.into_bytes(),
        })
    }

    fn answer(&self, status: u16, body: &[u8]) -> Result<Issued, Answered> {
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|err| unreadable("an assumeRole answer", status, &err, body))?;
        if let Some(error) = answer.error {
            let code = error
                .status
                .or(error.code.map(|c| c.to_string()))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(Answered::Refused {
                code,
                message: error.message.unwrap_or_default(),
            });
        }
        let credentials = answer
            .result
            .and_then(|r| r.credentials)
            .filter(|_| (200..300).contains(&status))
            .ok_or_else(|| Answered::Unreadable(format!("no credentials (HTTP {status})")))?;
        let expiration = expiration(&credentials.expiration).ok_or_else(|| {
            Answered::Unreadable(format!(
                "expiration {:?} is not a time",
                credentials.expiration
            ))
        })?;
        Ok(Issued {
            access_key_id: credentials.access_key,
            secret_access_key: Secret::new(credentials.secret_key),
            security_token: Secret::new(credentials.session_token),
            expiration,
        })
    }

    fn policy(&self, bucket: &str, prefix: &str) -> Policy {
        policy::jdcloud(bucket, prefix)
    }

    fn transient_code(&self, code: &str) -> bool {
        matches!(code, "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL")
    }
}

/// `yyyy-MM-dd HH:mm:ss` as documented, read as UTC: the zone is not documented, and a grant
/// never claims more than the lifetime asked for, so a later reading cannot lengthen it. RFC
/// 3339 times are read as they say.
fn expiration(text: &str) -> Option<OffsetDateTime> {
    let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text.trim(), &plain)
        .map(PrimitiveDateTime::assume_utc)
        .or_else(|_| OffsetDateTime::parse(text.trim(), &Rfc3339))
        .ok()
}

#[derive(Deserialize)]
struct Answer {
    result: Option<AnswerResult>,
    error: Option<ErrorFields>,
}

#[derive(Deserialize)]
struct AnswerResult {
    credentials: Option<Credentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    access_key: String,
    secret_key: String,
    session_token: String,
    expiration: String,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: Option<u16>,
    status: Option<String>,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uris_encode_the_colon() {
        assert_eq!(canonical_uri(PATH), "/v1/sessionToken%3AassumeRole");
        assert_eq!(canonical_uri("//a//b c"), "/a/b%20c");
    }

    #[test]
    fn expirations_read_as_documented() {
        assert_eq!(
            expiration("2019-01-01 00:00:00"),
            Some(time::macros::datetime!(2019-01-01 00:00:00 UTC))
        );
        assert_eq!(
            expiration("2019-01-01T08:00:00+08:00"),
            Some(time::macros::datetime!(2019-01-01 00:00:00 UTC))
        );
        assert_eq!(expiration("tomorrow"), None);
    }
}
