//! Who may call the store's S3 front: SigV4 secrets looked up from S3 grants (`S3Auth`), and
//! the session token and the grant's `rules` checked before any operation runs (`S3Access`).
//! A verified [`Principal`] is left in the request's extensions for the backend.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use ferry_protocol::{Provider, SignatureVersion};

use super::backend::to_s3_error;
use super::rules::{self, Operation, Target};
use crate::grants::{Grants, Refusal};

fn refused(refusal: Refusal) -> s3s::S3Error {
    match refusal {
        Refusal::UnknownKey => s3_error!(InvalidAccessKeyId, "the access key is not known"),
        Refusal::Expired => s3_error!(ExpiredToken, "the credentials have expired"),
        Refusal::MissingToken => s3_error!(AccessDenied, "a security token is required"),
        Refusal::WrongToken => s3_error!(InvalidToken, "the security token is not valid"),
        // S3 grants are all SigV4; only OSS grants have a second scheme.
        Refusal::OtherScheme => s3_error!(InvalidAccessKeyId, "the access key is not known"),
    }
}

fn internal(err: crate::Error) -> s3s::S3Error {
    tracing::error!(%err, "store access check failed");
    s3_error!(InternalError, "the store could not check the credentials")
}

/// The grant-backed `S3Auth` and `S3Access`.
#[derive(Clone)]
pub(crate) struct GrantAccess {
    grants: Arc<Grants>,
}

impl GrantAccess {
    pub(crate) fn new(grants: Arc<Grants>) -> Self {
        Self { grants }
    }
}

#[async_trait::async_trait]
impl S3Auth for GrantAccess {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self
            .grants
            .secret(access_key, Provider::S3, SignatureVersion::V4)
            .await
            .map_err(internal)?
        {
            Ok(secret) => Ok(SecretKey::from(secret)),
            Err(refusal) => Err(refused(refusal)),
        }
    }
}

/// The session token of a request: header, or query parameter of a presigned URL.
fn security_token(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(value) = cx.headers().get("x-amz-security-token") {
        return value.to_str().ok().map(str::to_owned);
    }
    let query = cx.uri().query()?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "X-Amz-Security-Token").then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait::async_trait]
impl S3Access for GrantAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "a signed request is required"));
        };
        let access_key = credentials.access_key.clone();
        let token = security_token(cx);
        let principal = match self
            .grants
            .principal(&access_key, token.as_deref(), Provider::S3)
            .await
            .map_err(internal)?
        {
            Ok(principal) => principal,
            Err(refusal) => return Err(refused(refusal)),
        };
        let name = cx.s3_op().name();
        let Some(op) = Operation::from_s3_name(name) else {
            return Err(s3_error!(
                AccessDenied,
                "{name} is not allowed by this grant"
            ));
        };
        let target = match cx.s3_path() {
            S3Path::Object { bucket, key } => Target::Object {
                bucket: bucket.as_ref(),
                key: key.as_ref(),
            },
            S3Path::Bucket { bucket } => Target::Bucket {
                bucket: bucket.as_ref(),
            },
            S3Path::Root => {
                return Err(s3_error!(
                    AccessDenied,
                    "{name} is not allowed by this grant"
                ));
            }
        };
        rules::allow(&principal, op, target).map_err(to_s3_error)?;
        cx.extensions_mut().insert(principal);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_of_query_values() {
        assert_eq!(percent_decode("a%2Fb%3D%3D"), "a/b==");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zzend%4"), "bad%zzend%4");
        assert_eq!(percent_decode("%"), "%");
    }
}
