//! Storage dialects: how a request to an object store is signed, which header carries the
//! security token, and how the store's errors are read. `s3` (AWS SigV4) serves AWS, MinIO,
//! JD Cloud, Ceph, RustFS and the embedded store; `oss` and `obs` follow the same shape.

pub mod case;
pub mod s3;

pub use ferry_sign::{
    RawUrl, SignError, SigningCredentials, UnsignedRequest, percent_decode, uri_encode,
};

/// The URL path of an object key: every byte but unreserved ones and `/` percent-encoded, so
/// spaces, `+ % # ? ~ =` and non-ASCII keys reach the store as written.
pub fn key_path(bucket: &str, key: &str) -> String {
    format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_reserved_and_unicode_characters() {
        assert_eq!(
            key_path("ferry", "uploads/1/a b+c%d#e?f~g=h ü.txt"),
            "/ferry/uploads/1/a%20b%2Bc%25d%23e%3Ff~g%3Dh%20%C3%BC.txt"
        );
    }
}
