//! AWS-compatible STS (AWS, MinIO, Ceph RGW, moto): `AssumeRole` through the Query API, a form
//! POST signed with SigV4 (service `sts`) by the server's long-term key, with an inline session
//! policy; the answer is `AssumeRoleResponse` XML, errors are `ErrorResponse` XML.

use ferry_sign::sigv4::{self, Scope};
use ferry_sign::{Secret, SigningCredentials, UnsignedRequest, uri_encode};
use serde::Deserialize;

use super::broker::{
    Answered, BrokerError, Call, Cloud, Issued, SignedRequest, excerpt, rfc3339_expiry, unreadable,
};
use super::config::BrokerConfig;
use super::policy::{self, Policy};

/// The STS API version of the Query API.
const VERSION: &str = "2011-06-15";

/// AssumeRole against an AWS-compatible STS.
pub(crate) struct Sts {
    endpoint: String,
    region: String,
    role_arn: String,
    credentials: SigningCredentials,
}

impl Sts {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        Self {
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            region: config.region.clone(),
            role_arn: config.role_arn.clone().unwrap_or_default(),
            credentials: SigningCredentials {
                access_key_id: config.access_key_id.clone(),
                secret_access_key: config.secret.clone(),
                security_token: None::<Secret>,
            },
        }
    }
}

/// `application/x-www-form-urlencoded`: RFC 3986 encoding with spaces as `+`, parameters in
/// the order given (the AWS SDKs' order: `Action`, `Version`, then the operation's members).
fn form(params: &[(&str, String)]) -> String {
    let encode = |text: &str| uri_encode(text, false).replace("%20", "+");
    params
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Cloud for Sts {
    fn request(&self, call: &Call) -> Result<SignedRequest, BrokerError> {
        let body = form(&[
            ("Action", "AssumeRole".into()),
            ("Version", VERSION.into()),
            ("RoleArn", self.role_arn.clone()),
            ("RoleSessionName", call.session_name.clone()),
            ("Policy", call.policy.to_json()),
            ("DurationSeconds", call.duration_secs.to_string()),
        ]);
        let unsigned = UnsignedRequest {
            method: "POST".into(),
            url: format!("{}/", self.endpoint),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
        };
        let scope = Scope {
            region: &self.region,
            service: "sts",
            time: call.time,
        };
        let payload = sigv4::sha256_hex(body.as_bytes());
        let signed =
            sigv4::sign(&unsigned, &self.credentials, &scope, &payload).map_err(|source| {
                BrokerError::Sign {
                    broker: "sts",
                    source,
                }
            })?;
        Ok(SignedRequest {
            method: "POST",
            url: signed.url,
            headers: signed.headers,
            body: body.into_bytes(),
        })
    }

    fn answer(&self, status: u16, body: &[u8]) -> Result<Issued, Answered> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Answered::Unreadable("the answer is not UTF-8".into()))?;
        if !(200..300).contains(&status) {
            return match quick_xml::de::from_str::<ErrorResponse>(text) {
                Ok(error) => Err(Answered::Refused {
                    code: error.error.code,
                    message: error.error.message.unwrap_or_default(),
                }),
                Err(_) => Err(Answered::Unreadable(excerpt(body))),
            };
        }
        let answer: AssumeRoleResponse = quick_xml::de::from_str(text)
            .map_err(|err| unreadable("an AssumeRoleResponse", status, &err, body))?;
        let c = answer.assume_role_result.credentials;
        let expiration = rfc3339_expiry("Expiration", &c.expiration)?;
        Ok(Issued {
            access_key_id: c.access_key_id,
            secret_access_key: Secret::new(c.secret_access_key),
            security_token: Secret::new(c.session_token),
            expiration,
        })
    }

    fn policy(&self, bucket: &str, prefix: &str) -> Policy {
        policy::aws(bucket, prefix)
    }

    fn transient_code(&self, code: &str) -> bool {
        matches!(
            code,
            "Throttling" | "ThrottlingException" | "ServiceUnavailable" | "InternalFailure"
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    assume_role_result: AssumeRoleResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResult {
    credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorResponse {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDetail {
    code: String,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::config::BrokerKind;

    fn sts() -> Sts {
        let mut config = BrokerConfig::new(
            BrokerKind::Sts,
            "us-east-1",
            "b",
            "https://s3.amazonaws.com",
            "AKIDEXAMPLE",
            Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        );
        config.role_arn = Some("arn:aws:iam::123456789012:role/uploads".into());
        Sts::new(&config)
    }

    #[test]
    fn the_form_is_signed_for_sts() {
        let call = Call {
            session_name: "ferry-1-alice".into(),
            policy: policy::aws("b", "uploads/1/"),
            duration_secs: 900,
            time: time::macros::datetime!(2024-05-01 12:00:00 UTC),
            nonce: String::new(),
        };
        let request = sts().request(&call).unwrap();
        let body = String::from_utf8(request.body).unwrap();
        assert!(
            body.starts_with(
                "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3A\
                 role%2Fuploads&RoleSessionName=ferry-1-alice&Policy=%7B"
            ),
            "{body}"
        );
        assert!(body.ends_with("%5D%7D&DurationSeconds=900"), "{body}");
        let auth = ferry_sign::header(&request.headers, "authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/"),
            "{auth}"
        );
        assert!(!auth.contains("wJalr"));
    }

    #[test]
    fn errors_keep_the_clouds_code() {
        let xml = br#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
            <Error><Type>Sender</Type><Code>AccessDenied</Code>
            <Message>User is not authorized to perform: sts:AssumeRole</Message></Error>
            <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"#;
        let Err(Answered::Refused { code, message }) = sts().answer(403, xml) else {
            panic!("a refusal");
        };
        assert_eq!(code, "AccessDenied");
        assert!(message.contains("sts:AssumeRole"));
        assert!(matches!(
            sts().answer(502, b"<html>bad gateway"),
            Err(Answered::Unreadable(_))
        ));
        assert!(matches!(
            sts().answer(200, b"{}"),
            Err(Answered::Unreadable(_))
        ));
        assert!(sts().transient_code("Throttling"));
    }
}
