//! Alibaba Cloud OSS signatures: `OSS4-HMAC-SHA256` ([`v4`], the default) and the older
//! `OSS AK:signature` HMAC-SHA1 scheme ([`v1`]), each in header and presigned-URL form.
//!
//! Both sign the canonical resource `/<bucket>/<key>` built from the bucket and the unencoded
//! key, not the URL path: with a virtual-hosted or CNAME endpoint the bucket is only in the host
//! name, and OSS still signs it (unlike OBS in CNAME mode, see [`crate::obs`]).

pub mod v1;
pub mod v4;

/// The header that carries the STS security token in header mode.
pub const TOKEN_HEADER: &str = "x-oss-security-token";
/// The header that carries the signing time (V4: `YYYYMMDDTHHMMSSZ`; V1: an HTTP date that
/// takes precedence over `Date`).
pub const DATE_HEADER: &str = "x-oss-date";
/// The header that carries the payload hash (V4), `UNSIGNED-PAYLOAD` when absent.
pub const CONTENT_SHA256_HEADER: &str = "x-oss-content-sha256";
/// The prefix of the headers OSS always signs.
pub const HEADER_PREFIX: &str = "x-oss-";
/// The signing product of OSS.
pub const PRODUCT: &str = "oss";
/// The signing product of OSS on CloudBox (the region is then the CloudBox id).
pub const PRODUCT_CLOUDBOX: &str = "oss-cloudbox";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Resource, SigningCredentials, UnsignedRequest};

    /// V1 and V4 both keep the bucket in the canonical resource when the URL has only the
    /// bucket's own domain (CNAME mode), as ali-oss and oss2 do.
    #[test]
    fn cname_urls_still_sign_the_bucket() {
        let credentials = SigningCredentials {
            access_key_id: "ak".into(),
            secret_access_key: "sk".into(),
            security_token: None,
        };
        let time = crate::sigv4::parse_amz_date("20231216T162057Z").unwrap();
        let resource = Resource {
            bucket: Some("bucket"),
            key: Some("a b.txt"),
        };
        let request = |host: &str| UnsignedRequest {
            method: "PUT".into(),
            url: format!("https://{host}/a%20b.txt"),
            headers: vec![],
        };
        let scope = v4::Scope {
            region: "cn-hangzhou",
            product: PRODUCT,
            time,
        };
        let by_cname = v4::sign(
            &request("files.example.com"),
            &credentials,
            &scope,
            &resource,
            &[] as &[&str],
        );
        let hosted = v4::sign(
            &request("bucket.oss-cn-hangzhou.aliyuncs.com"),
            &credentials,
            &scope,
            &resource,
            &[] as &[&str],
        );
        assert_eq!(by_cname.unwrap().signature, hosted.unwrap().signature);
        let v1 = v1::sign(&request("files.example.com"), &credentials, time, &resource).unwrap();
        assert!(v1.string_to_sign.ends_with("\n/bucket/a b.txt"));
    }
}
