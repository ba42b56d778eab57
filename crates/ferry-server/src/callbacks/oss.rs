//! OSS's callback signature: `authorization` is the base64 of an RSA (PKCS#1 v1.5) signature
//! over the MD5 of `url-decoded path [ "?" query ] "\n" body`, and `x-oss-pub-key-url` is the
//! base64 of the URL of the public key that checks it. The real OSS signs with a 512-bit key
//! (`https://gosspublic.alicdn.com/callback_pub_key_v1.pem`), so keys from 512 bits up are
//! accepted for checking; the embedded store signs with its own 2048-bit key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use rsa::pkcs8::der::Decode;
use rsa::pkcs8::der::asn1::AsUintRef;
use rsa::{BoxedUint, Pkcs1v15Sign, PrivateKey, PublicKey};

/// `DigestInfo` prefix of an MD5 hash in a PKCS#1 v1.5 signature (RFC 8017, 9.2 note 1).
const MD5_PREFIX: [u8; 18] = [
    0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00,
    0x04, 0x10,
];

/// Smallest and largest RSA modulus (bits) a callback key may have.
const KEY_BITS: std::ops::RangeInclusive<usize> = 512..=8192;

/// Why a public key or a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("the public key is not an RSA public key in PEM: {0}")]
    BadKey(String),
    #[error("the authorization header is missing")]
    MissingSignature,
    #[error("the authorization header is not base64")]
    NotBase64,
    #[error("the signature does not match the request (forged, or changed on the way)")]
    Mismatch,
}

fn md5_scheme() -> Pkcs1v15Sign {
    Pkcs1v15Sign {
        hash_len: Some(16),
        prefix: Box::new(MD5_PREFIX),
    }
}

/// What OSS signs: the URL-decoded path, the raw query with its `?` (if any), a newline, the
/// body.
pub(crate) fn string_to_sign(path: &str, query: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = ferry_sign::percent_decode(path).into_bytes();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The `authorization` value for a request: base64 of the RSA-MD5 signature.
pub(crate) fn sign(key: &PrivateKey, signed: &[u8]) -> Result<String, rsa::Error> {
    let digest = Md5::digest(signed);
    Ok(STANDARD.encode(key.sign(md5_scheme(), &digest)?))
}

/// Checks an `authorization` value against what was signed.
pub(crate) fn verify(
    key: &PublicKey,
    signed: &[u8],
    authorization: Option<&str>,
) -> Result<(), SignatureError> {
    let value = authorization.ok_or(SignatureError::MissingSignature)?;
    let signature = STANDARD
        .decode(value.trim())
        .map_err(|_| SignatureError::NotBase64)?;
    let digest = Md5::digest(signed);
    key.verify(md5_scheme(), &digest, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

fn bad_key(err: impl std::fmt::Display) -> SignatureError {
    SignatureError::BadKey(err.to_string())
}

fn uint(bytes: &[u8]) -> Result<BoxedUint, SignatureError> {
    let bits = u32::try_from(bytes.len() * 8).map_err(bad_key)?;
    BoxedUint::from_be_slice(bytes, bits.max(8)).map_err(|_| bad_key("an integer is malformed"))
}

/// An RSA public key from PEM: `PUBLIC KEY` (SubjectPublicKeyInfo, what OSS serves) or
/// `RSA PUBLIC KEY` (PKCS#1), 512 to 8192 bits.
pub(crate) fn public_key_from_pem(pem: &str) -> Result<PublicKey, SignatureError> {
    let (label, document) = rsa::pkcs8::Document::from_pem(pem.trim()).map_err(bad_key)?;
    let spki;
    let pkcs1 = match label {
        "PUBLIC KEY" => {
            spki = rsa::pkcs8::SubjectPublicKeyInfoRef::from_der(document.as_bytes())
                .map_err(bad_key)?;
            spki.subject_public_key
                .as_bytes()
                .ok_or_else(|| bad_key("the key bits are not whole bytes"))?
        }
        "RSA PUBLIC KEY" => document.as_bytes(),
        other => return Err(bad_key(format!("a {other:?} is not a public key"))),
    };
    let key = rsa::pkcs1::RsaPublicKeyRef::from_der(pkcs1).map_err(bad_key)?;
    let n = uint(key.modulus.as_uint_ref().as_bytes())?;
    let e = uint(key.public_exponent.as_uint_ref().as_bytes())?;
    PublicKey::new_with_size_limits(n, e, KEY_BITS).map_err(bad_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OSS's published callback key (`callback_pub_key_v1.pem`) and the signed example of its
    /// callback documentation: `POST /index.php?id=1&index=2` with body `bucket=yonghu-test`.
    const OSS_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKs/JBGzwUB2aVht4crBx3oIPBLNsjGs
C0fTXv+nvlmklvkcolvpvXLTjaxUHR3W9LXxQ2EHXAJfCB+6H2YF1k8CAwEAAQ==
-----END PUBLIC KEY-----";
    const OSS_SIGNATURE: &str =
        "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA==";

    #[test]
    fn the_published_oss_example_verifies_and_a_changed_one_does_not() {
        let key = public_key_from_pem(OSS_KEY).unwrap();
        let signed = string_to_sign("/index.php", Some("id=1&index=2"), b"bucket=yonghu-test");
        assert_eq!(signed, b"/index.php?id=1&index=2\nbucket=yonghu-test");
        assert_eq!(verify(&key, &signed, Some(OSS_SIGNATURE)), Ok(()));
        let changed = string_to_sign("/index.php", Some("id=1&index=2"), b"bucket=yonghu-tesT");
        assert_eq!(
            verify(&key, &changed, Some(OSS_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&key, &signed, None),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(&key, &signed, Some("not base64!")),
            Err(SignatureError::NotBase64)
        );
    }

    #[test]
    fn paths_are_decoded_and_an_empty_query_adds_nothing() {
        assert_eq!(string_to_sign("/a%20b", None, b"x"), b"/a b\nx");
        assert_eq!(string_to_sign("/a", Some(""), b""), b"/a\n");
    }

    #[test]
    fn keys_that_are_not_rsa_public_keys_are_refused() {
        assert!(matches!(
            public_key_from_pem("hello"),
            Err(SignatureError::BadKey(_))
        ));
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        assert!(matches!(
            public_key_from_pem(private),
            Err(SignatureError::BadKey(_))
        ));
    }
}
