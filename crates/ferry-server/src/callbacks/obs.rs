//! OBS's callback signature, as its user guide describes it: the callback carries
//! `Authorization` and `x-signature-time`, and the receiver recomputes the signature with its
//! own secret key over `callback URL path "\n" body "\n" x-signature-time`. The guide leaves
//! the MAC unnamed in the part we could read; Ferry uses HMAC-SHA256, base64, with a key
//! derived from the server's master key (the embedded store and the app server share it). The
//! time makes a replay detectable: a callback older than [`MAX_AGE_SECS`] is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::oss::SignatureError;

/// How far from now a callback's `x-signature-time` may be.
pub(crate) const MAX_AGE_SECS: i64 = 15 * 60;

/// The header carrying the signing time (Unix seconds).
pub(crate) const TIME_HEADER: &str = "x-signature-time";

fn string_to_sign(path: &str, body: &[u8], time: &str) -> Vec<u8> {
    let mut out = ferry_sign::percent_decode(path).into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(b'\n');
    out.extend_from_slice(time.as_bytes());
    out
}

fn mac(key: &[u8], path: &str, body: &[u8], time: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(&string_to_sign(path, body, time));
    mac
}

/// The `Authorization` value for a callback to `path` with `body` at `time`.
pub(crate) fn sign(key: &[u8], path: &str, body: &[u8], time: &str) -> String {
    STANDARD.encode(mac(key, path, body, time).finalize().into_bytes())
}

/// Why an OBS callback is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ObsRefusal {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("x-signature-time is missing or not a time")]
    NoTime,
    #[error("the callback was signed at {0}, too far from now: a replay, or a skewed clock")]
    Stale(i64),
}

/// Checks a callback's signature (constant time) and its age against `now`.
pub(crate) fn verify(
    key: &[u8],
    path: &str,
    body: &[u8],
    time: Option<&str>,
    authorization: Option<&str>,
    now: i64,
) -> Result<(), ObsRefusal> {
    let time = time.ok_or(ObsRefusal::NoTime)?;
    let signed_at: i64 = time.trim().parse().map_err(|_| ObsRefusal::NoTime)?;
    let value = authorization.ok_or(SignatureError::MissingSignature)?;
    let signature = STANDARD
        .decode(value.trim())
        .map_err(|_| SignatureError::NotBase64)?;
    mac(key, path, body, time)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)?;
    if (now - signed_at).abs() > MAX_AGE_SECS {
        return Err(ObsRefusal::Stale(signed_at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_check_body_path_and_age() {
        let key = b"k";
        let auth = sign(key, "/cb", b"a=1", "1000");
        let check = |path: &str, body: &[u8], auth: &str, now| {
            verify(key, path, body, Some("1000"), Some(auth), now)
        };
        assert_eq!(check("/cb", b"a=1", &auth, 1000), Ok(()));
        assert_eq!(
            check("/cb", b"a=2", &auth, 1000),
            Err(SignatureError::Mismatch.into())
        );
        assert_eq!(
            check("/other", b"a=1", &auth, 1000),
            Err(SignatureError::Mismatch.into())
        );
        assert_eq!(
            check("/cb", b"a=1", &auth, 1000 + MAX_AGE_SECS + 1),
            Err(ObsRefusal::Stale(1000))
        );
        assert_eq!(
            verify(key, "/cb", b"a=1", None, Some(&auth), 1000),
            Err(ObsRefusal::NoTime)
        );
        let forged = sign(b"other key", "/cb", b"a=1", "1000");
        assert_eq!(
            check("/cb", b"a=1", &forged, 1000),
            Err(SignatureError::Mismatch.into())
        );
    }
}
