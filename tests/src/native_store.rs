//! A client of the embedded store's OSS and OBS fronts that signs with `ferry_sign` (the code
//! the uploader signs with), in the bucket's own domain (the grant's endpoint, CNAME mode), with
//! knobs to sign wrongly: another secret, another token, another time.

use ferry_protocol::Grant;
use ferry_sign::obs::Flavor;
use ferry_sign::oss::{v1, v4};
use ferry_sign::{Resource, SigningCredentials, UnsignedRequest, uri_encode};
use time::OffsetDateTime;

use crate::{REQUEST_TIMEOUT, Reply, Token};

/// Which signature the client writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `OSS4-HMAC-SHA256`.
    OssV4,
    /// `OSS ak:signature`.
    OssV1,
    /// `OBS ak:signature`.
    Obs,
}

/// A signing client of one grant.
pub struct NativeClient {
    http: reqwest::Client,
    /// The grant it signs with.
    pub grant: Grant,
    /// The signature it writes.
    pub scheme: Scheme,
    /// Token handling.
    pub token: Token,
    /// Secret override, to test a bad signature.
    pub secret: Option<String>,
    /// Seconds added to the signing time, to test clock skew.
    pub skew_secs: i64,
    /// OBS: its own scheme, or the S3 V2 flavor its SDKs use in CNAME mode.
    pub flavor: Flavor,
}

impl NativeClient {
    /// A client for `grant`, writing `scheme`.
    pub fn new(grant: Grant, scheme: Scheme) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .no_proxy()
                .build()
                .expect("HTTP client"),
            grant,
            scheme,
            token: Token::Grant,
            secret: None,
            skew_secs: 0,
            flavor: Flavor::Obs,
        }
    }

    fn credentials(&self) -> SigningCredentials {
        let token = match &self.token {
            Token::Grant => Some(self.grant.security_token.clone().into()),
            Token::Missing => None,
            Token::Other(t) => Some(t.clone().into()),
        };
        SigningCredentials {
            access_key_id: self.grant.access_key_id.clone(),
            secret_access_key: self
                .secret
                .clone()
                .unwrap_or_else(|| self.grant.secret_access_key.clone())
                .into(),
            security_token: token,
        }
    }

    fn time(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.skew_secs)
    }

    /// The host of the endpoint without its port: what OBS signs as the bucket in CNAME mode.
    fn domain(&self) -> String {
        let host = self.grant.endpoint.trim_start_matches("http://");
        host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned()
    }

    /// `<endpoint>/<key>` (key encoded, `/` kept) with a raw query.
    pub fn url(&self, key: &str, query: &str) -> String {
        let mut url = format!("{}/{}", self.grant.endpoint, uri_encode(key, true));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Signs `method url` for `key` (`None` for the bucket) in header mode.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        key: Option<&str>,
        headers: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let request = UnsignedRequest {
            method: method.into(),
            url: url.to_owned(),
            headers,
        };
        let credentials = self.credentials();
        let signed = match self.scheme {
            Scheme::OssV4 => {
                let scope = v4::Scope {
                    region: &self.grant.region,
                    product: ferry_sign::oss::PRODUCT,
                    time: self.time(),
                };
                let resource = Resource {
                    bucket: Some(&self.grant.bucket),
                    key,
                };
                v4::sign(&request, &credentials, &scope, &resource, &[] as &[&str])
            }
            Scheme::OssV1 => {
                let resource = Resource {
                    bucket: Some(&self.grant.bucket),
                    key,
                };
                v1::sign(&request, &credentials, self.time(), &resource)
            }
            Scheme::Obs => {
                let domain = self.domain();
                let resource = Resource {
                    bucket: Some(&domain),
                    key,
                };
                ferry_sign::obs::sign(&request, &credentials, self.time(), self.flavor, &resource)
            }
        };
        signed.expect("sign").headers
    }

    /// A presigned URL for `method` on `key`, valid `expires` seconds from the signing time.
    pub fn presign(&self, method: &str, key: &str, expires: u64) -> String {
        let request = UnsignedRequest {
            method: method.into(),
            url: self.url(key, ""),
            headers: vec![],
        };
        let credentials = self.credentials();
        let signed = match self.scheme {
            Scheme::OssV4 => {
                let scope = v4::Scope {
                    region: &self.grant.region,
                    product: ferry_sign::oss::PRODUCT,
                    time: self.time(),
                };
                let resource = Resource {
                    bucket: Some(&self.grant.bucket),
                    key: Some(key),
                };
                v4::presign(
                    &request,
                    &credentials,
                    &scope,
                    &resource,
                    &[] as &[&str],
                    expires,
                )
            }
            Scheme::OssV1 => {
                let resource = Resource {
                    bucket: Some(&self.grant.bucket),
                    key: Some(key),
                };
                v1::presign(&request, &credentials, self.time(), &resource, expires)
            }
            Scheme::Obs => {
                let domain = self.domain();
                let resource = Resource {
                    bucket: Some(&domain),
                    key: Some(key),
                };
                ferry_sign::obs::presign(
                    &request,
                    &credentials,
                    self.time(),
                    self.flavor,
                    &resource,
                    expires,
                )
            }
        };
        signed.expect("presign").url
    }

    /// Sends a signed request about `key` (`""` for the bucket) with a raw query.
    pub async fn send(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Reply {
        let url = self.url(key, query);
        let signed = self.sign(method, &url, (!key.is_empty()).then_some(key), headers);
        let mut builder = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            &url,
        );
        for (name, value) in &signed {
            if !name.eq_ignore_ascii_case("host") {
                builder = builder.header(name, value);
            }
        }
        Reply::from(builder.body(body).send().await).await
    }

    /// Sends a request to a presigned URL.
    pub async fn send_presigned(&self, method: &str, url: &str, body: Vec<u8>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        Reply::from(self.http.request(method, url).body(body).send().await).await
    }

    /// PutObject.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Reply {
        self.send("PUT", key, "", vec![], body).await
    }

    /// InitiateMultipartUpload; the upload id.
    pub async fn create_multipart(&self, key: &str) -> String {
        let reply = self.send("POST", key, "uploads", vec![], vec![]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        crate::xml_value(&reply.body, "UploadId").expect("UploadId")
    }

    /// UploadPart.
    pub async fn upload_part(&self, key: &str, id: &str, number: u32, body: Vec<u8>) -> Reply {
        let query = format!("partNumber={number}&uploadId={id}");
        self.send("PUT", key, &query, vec![], body).await
    }

    /// CompleteMultipartUpload with `(number, etag)` pairs as given.
    pub async fn complete(&self, key: &str, id: &str, parts: &[(u32, String)]) -> Reply {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = format!("uploadId={id}");
        self.send("POST", key, &query, vec![], xml.into_bytes())
            .await
    }
}
