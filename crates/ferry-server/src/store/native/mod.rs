//! The store's OSS and OBS fronts: requests signed the Alibaba or the Huawei way, answered in
//! that vendor's XML and error codes, over the same [`Core`] (and so the same rules and
//! history) as the S3 front.
//!
//! Before any byte of a body is read, a request's signature, credentials, token, time, operation
//! and key are checked, in that order; only then does the operation stream its body.

mod dialect;
mod operations;
mod reply;
mod request;
mod signature;

use std::sync::Arc;

use hyper::body::Incoming;
use s3s::HttpResponse;
use time::OffsetDateTime;

pub(crate) use self::dialect::Dialect;
use self::reply::Reply;
use self::request::Received;
use self::signature::AuthError;
use super::core::{Core, StoreError};
use super::rules;
use crate::callbacks::Delivery;
use crate::grants::{Grants, Principal, Refusal};

/// How far a signing time may be from the store's clock (the vendors' own tolerance).
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a request to a native front failed.
#[derive(Debug)]
enum Failure {
    Auth(AuthError),
    Store(StoreError),
}

impl From<AuthError> for Failure {
    fn from(err: AuthError) -> Self {
        Self::Auth(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl Failure {
    fn respond(&self, reply: &Reply) -> HttpResponse {
        match self {
            Self::Auth(err) => reply.error(reply.dialect.auth_refusal(err), &err.to_string()),
            Self::Store(err) => reply.error(reply.dialect.store_refusal(err), &err.to_string()),
        }
    }
}

fn refused(refusal: Refusal) -> AuthError {
    match refusal {
        Refusal::UnknownKey => AuthError::UnknownKey,
        Refusal::Expired => AuthError::Expired,
        Refusal::MissingToken => AuthError::MissingToken,
        Refusal::WrongToken => AuthError::WrongToken,
        Refusal::OtherScheme => AuthError::Unsupported(
            "this grant's requests are signed with the other OSS signature version \
             (the grant's signature_version says which)"
                .into(),
        ),
    }
}

fn internal(err: crate::Error) -> AuthError {
    tracing::error!(%err, "store access check failed");
    AuthError::Internal
}

/// Whether a claim's signing time and expiry are acceptable now.
fn check_time(
    signed_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let skew = time::Duration::seconds(MAX_SKEW_SECS);
    match (signed_at, expires_at) {
        (_, Some(expires_at)) if now > expires_at => Err(AuthError::UrlExpired),
        (Some(signed_at), Some(_)) if signed_at > now + skew => Err(AuthError::Skewed),
        (_, Some(_)) => Ok(()),
        (Some(signed_at), None) if (now - signed_at).abs() > skew => Err(AuthError::Skewed),
        (Some(_), None) => Ok(()),
        (None, None) => Err(AuthError::Malformed("the request carries no date".into())),
    }
}

/// The dialect's answer to a request refused at the door (see `admission`).
pub(crate) fn refusal(
    dialect: Dialect,
    status: http::StatusCode,
    code: &'static str,
    message: &str,
) -> HttpResponse {
    let named = dialect::Named {
        status,
        code,
        ec: None,
    };
    Reply::new(dialect, "", false).error(named, message)
}

/// The OSS and OBS fronts.
#[derive(Clone)]
pub(crate) struct NativeFront {
    core: Core,
    grants: Arc<Grants>,
    delivery: Arc<Delivery>,
    /// The store's bucket (the one a grant's key implies).
    bucket: String,
}

impl NativeFront {
    pub(crate) fn new(
        core: Core,
        grants: Arc<Grants>,
        delivery: Arc<Delivery>,
        bucket: String,
    ) -> Self {
        Self {
            core,
            grants,
            delivery,
            bucket,
        }
    }

    /// The store's callback public key (`GET` [`crate::callbacks::PUBLIC_KEY_PATH`], unsigned:
    /// it is public, and whoever checks a callback fetches it).
    pub(crate) async fn public_key(self) -> HttpResponse {
        let (status, body) = match self.delivery.public_key_pem().await {
            Ok(pem) => (http::StatusCode::OK, pem),
            Err(err) => {
                tracing::error!(%err, "the callback key is not available");
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "the store's callback key is not available".to_owned(),
                )
            }
        };
        let mut response = http::Response::new(s3s::Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-pem-file"),
        );
        response
    }

    /// Answers one request signed in `dialect`.
    pub(crate) async fn serve(
        self,
        dialect: Dialect,
        request: http::Request<Incoming>,
    ) -> HttpResponse {
        let received = Received::parse(&request, &self.bucket);
        let reply = Reply::new(
            dialect,
            &received.host,
            request.method() == http::Method::HEAD,
        );
        let body = request.into_body();
        let answer = match self.authorize(dialect, &received).await {
            Ok((principal, op)) => {
                let call = operations::Call {
                    core: &self.core,
                    delivery: &self.delivery,
                    who: &principal,
                    received: &received,
                    reply: &reply,
                };
                call.run(op, body).await
            }
            Err(failure) => Err(failure),
        };
        answer.unwrap_or_else(|failure| {
            tracing::debug!(?dialect, ?failure, method = %received.method, "store request refused");
            failure.respond(&reply)
        })
    }

    /// Who signed the request, and the operation it may run.
    async fn authorize(
        &self,
        dialect: Dialect,
        received: &Received,
    ) -> Result<(Principal, rules::Operation), Failure> {
        let principal = self.authenticate(dialect, received).await?;
        let Some(op) = request::operation(dialect, received) else {
            return Err(StoreError::AccessDenied(format!(
                "{} {} is not an upload operation this grant allows",
                received.method,
                received.key.as_deref().unwrap_or("/")
            ))
            .into());
        };
        rules::allow(&principal, op, received.target())?;
        Ok((principal, op))
    }

    /// The verified caller: signature, grant, time and token.
    async fn authenticate(
        &self,
        dialect: Dialect,
        received: &Received,
    ) -> Result<Principal, AuthError> {
        let claim = signature::claim(dialect, received)?;
        let provider = dialect.provider();
        if let Some((region, product)) = claim.v4_scope()
            && (region != self.grants.settings().region || product != "oss")
        {
            return Err(AuthError::Malformed(format!(
                "the credential scope is {region}/{product}; this store signs {}/oss",
                self.grants.settings().region
            )));
        }
        let version = claim.signature_version();
        let secret = match self
            .grants
            .secret(&claim.access_key, provider, version)
            .await
        {
            Ok(Ok(secret)) => secret,
            // SigV2 is OBS's second flavor; for anyone else it is a scheme the store refuses.
            Ok(Err(Refusal::UnknownKey)) if claim.aws_v2 => {
                return Err(AuthError::Unsupported(
                    "SigV2 (AWS ak:signature) is accepted for OBS grants only; \
                     sign S3 requests with AWS4-HMAC-SHA256"
                        .into(),
                ));
            }
            Ok(Err(refusal)) => return Err(refused(refusal)),
            Err(err) => return Err(internal(err)),
        };
        signature::verify(&claim, received, received.resource_bucket(dialect), &secret)?;
        check_time(claim.signed_at, claim.expires_at, OffsetDateTime::now_utc())?;
        self.grants
            .principal(&claim.access_key, claim.token.as_deref(), provider)
            .await
            .map_err(internal)?
            .map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_time_of(
        (signed_at, expires_at): (Option<OffsetDateTime>, Option<OffsetDateTime>),
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        check_time(signed_at, expires_at, now)
    }

    #[test]
    fn signing_times_and_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let at = |secs: i64| Some(now + time::Duration::seconds(secs));
        assert_eq!(check_time_of((at(-60), None), now), Ok(()));
        assert_eq!(check_time_of((at(-901), None), now), Err(AuthError::Skewed));
        assert_eq!(check_time_of((at(901), None), now), Err(AuthError::Skewed));
        assert_eq!(check_time_of((at(-3600), at(10)), now), Ok(()));
        assert_eq!(check_time_of((None, at(10)), now), Ok(()));
        assert_eq!(
            check_time_of((None, at(-1)), now),
            Err(AuthError::UrlExpired)
        );
        assert_eq!(
            check_time_of((at(901), at(2000)), now),
            Err(AuthError::Skewed)
        );
        assert!(matches!(
            check_time_of((None, None), now),
            Err(AuthError::Malformed(_))
        ));
    }
}
