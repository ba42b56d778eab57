//! Huawei OBS signatures: `Authorization: OBS <AccessKeyId>:<Signature>`, the signature being
//! base64(HMAC-SHA1(secret, string to sign)), and the presigned form with `AccessKeyId`,
//! `Expires` and `Signature` in the query (and the token as `x-obs-security-token`, signed).
//!
//! The string to sign is `VERB\nContent-MD5\nContent-Type\nDate\n` + the `x-obs-*` headers
//! (lower-cased, sorted, `x-obs-meta-*` values trimmed) + the canonical resource:
//! `/<bucket>/<key>` with the key percent-encoded (`/` kept), then the sub-resources among the
//! query parameters ([`SUB_RESOURCES`] or the `x-obs-` prefix), sorted, values decoded. The date
//! line is empty when `x-obs-date` is sent (OBS documentation and esdk-obs-python).
//!
//! CNAME mode: the OBS SDKs sign `/<domain>/<key>`, the bucket's own domain in place of the
//! bucket: pass the domain as [`Resource::bucket`]. Both OBS SDKs (Node and Python) also switch
//! to the S3 V2 scheme ([`Flavor::AwsV2`]: `AWS AK:sig`, `x-amz-*` headers) in CNAME and
//! path-style mode, so a store that serves them there verifies that flavor too.

use time::OffsetDateTime;

use crate::oss::v1::{parse_prefixed, parse_presigned_with};
use crate::sigv4::MAX_PRESIGN_SECS;
use crate::{
    RawUrl, Resource, SignError, SignedRequest, SigningCredentials, UnsignedRequest, add_header,
    header, hmac_sha1_base64, http_date, prefixed_headers, query_pairs, uri_encode,
};

pub use crate::oss::v1::Presigned;

/// The header that carries the security token of temporary credentials (OBS flavor).
pub const TOKEN_HEADER: &str = "x-obs-security-token";

/// Which of the two HMAC-SHA1 schemes OBS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The OBS signature: `OBS AK:sig`, `x-obs-*` headers.
    Obs,
    /// The S3 V2 signature OBS also accepts (and its SDKs use in CNAME and path-style mode):
    /// `AWS AK:sig`, `x-amz-*` headers.
    AwsV2,
}

impl Flavor {
    /// `x-obs-` or `x-amz-`: the headers signed (and query parameters signed as sub-resources).
    pub fn header_prefix(self) -> &'static str {
        match self {
            Flavor::Obs => "x-obs-",
            Flavor::AwsV2 => "x-amz-",
        }
    }

    /// The word before the credential in the `Authorization` header.
    pub fn auth_prefix(self) -> &'static str {
        match self {
            Flavor::Obs => "OBS",
            Flavor::AwsV2 => "AWS",
        }
    }

    /// The header (and presigned query parameter) that carries the security token.
    pub fn token_header(self) -> &'static str {
        match self {
            Flavor::Obs => TOKEN_HEADER,
            Flavor::AwsV2 => "x-amz-security-token",
        }
    }

    /// The date header whose presence empties the date line.
    pub fn date_header(self) -> &'static str {
        match self {
            Flavor::Obs => "x-obs-date",
            Flavor::AwsV2 => "x-amz-date",
        }
    }

    /// The presigned query parameter naming the access key.
    pub fn access_key_param(self) -> &'static str {
        match self {
            Flavor::Obs => "AccessKeyId",
            Flavor::AwsV2 => "AWSAccessKeyId",
        }
    }

    fn meta_prefix(self) -> &'static str {
        match self {
            Flavor::Obs => "x-obs-meta-",
            Flavor::AwsV2 => "x-amz-meta-",
        }
    }
}

/// The query parameters OBS signs as sub-resources, compared case-insensitively (the list of
/// esdk-obs-nodejs); parameters starting with the flavor's header prefix are signed too.
pub const SUB_RESOURCES: &[&str] = &[
    "acl",
    "append",
    "attname",
    "backtosource",
    "bucketstatus",
    "cdnnotifyconfiguration",
    "cors",
    "customdomain",
    "delete",
    "deletebucket",
    "directcoldaccess",
    "encryption",
    "inventory",
    "length",
    "lifecycle",
    "location",
    "logging",
    "metadata",
    "mirrorbacktosource",
    "modify",
    "name",
    "notification",
    "obsalias",
    "obsbucketalias",
    "obscompresspolicy",
    "obsworkflowtriggerpolicy",
    "object-lock",
    "partnumber",
    "policy",
    "policystatus",
    "position",
    "publicaccessblock",
    "quota",
    "rename",
    "replication",
    "requestpayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "storageclass",
    "storageinfo",
    "storagepolicy",
    "tagging",
    "torrent",
    "truncate",
    "uploadid",
    "uploads",
    "versionid",
    "versioning",
    "versions",
    "website",
    "x-image-process",
    "x-image-save-bucket",
    "x-image-save-object",
    "x-oss-process",
    "x-workflow-execution-state",
    "x-workflow-execution-type",
    "x-workflow-graph-name",
    "x-workflow-limit",
    "x-workflow-next-marker",
    "x-workflow-prefix",
    "x-workflow-start",
    "x-workflow-template-name",
];

fn is_sub_resource(flavor: Flavor, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SUB_RESOURCES.contains(&lower.as_str()) || lower.starts_with(flavor.header_prefix())
}

/// The canonical resource: `/<bucket>/<key>` with the key percent-encoded (`/` kept; `/` alone
/// without a bucket), then the sub-resources among the decoded `query` pairs, sorted by name,
/// `name` alone when the value is empty.
pub fn canonical_resource(
    flavor: Flavor,
    resource: &Resource<'_>,
    query: &[(String, String)],
) -> Result<String, SignError> {
    let mut out = match (resource.bucket, resource.key) {
        (Some(bucket), key) => format!("/{bucket}/{}", uri_encode(key.unwrap_or(""), true)),
        (None, Some(_)) => return Err(SignError::KeyWithoutBucket),
        (None, None) => "/".to_owned(),
    };
    let mut subs: Vec<&(String, String)> = query
        .iter()
        .filter(|(name, _)| is_sub_resource(flavor, name))
        .collect();
    subs.sort();
    for (i, (name, value)) in subs.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    Ok(out)
}

/// The date line of a header-signed request: empty when the flavor's date header
/// (`x-obs-date`) is sent, else the `Date` header (empty if none).
pub fn date_line(flavor: Flavor, headers: &[(String, String)]) -> &str {
    match header(headers, flavor.date_header()) {
        Some(_) => "",
        None => header(headers, "date").unwrap_or(""),
    }
}

/// The string to sign. `date` is [`date_line`] (header mode) or the `Expires` value (presigned).
pub fn string_to_sign(
    flavor: Flavor,
    method: &str,
    headers: &[(String, String)],
    date: &str,
    canonical_resource: &str,
) -> String {
    let line = |name: &str| header(headers, name).map(str::trim).unwrap_or("");
    let meta = flavor.meta_prefix();
    let signed = prefixed_headers(headers, flavor.header_prefix(), |name, value| {
        match name.starts_with(meta) {
            true => value.trim().to_owned(),
            false => value.to_owned(),
        }
    });
    let block: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    format!(
        "{}\n{}\n{}\n{date}\n{block}{canonical_resource}",
        method.to_ascii_uppercase(),
        line("content-md5"),
        line("content-type"),
    )
}

/// The base64 signature of `string_to_sign`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    hmac_sha1_base64(secret, string_to_sign)
}

/// `OBS <AccessKeyId>:<Signature>` (or `AWS …`).
pub fn authorization(flavor: Flavor, access_key_id: &str, signature: &str) -> String {
    format!("{} {access_key_id}:{signature}", flavor.auth_prefix())
}

/// Reads an `Authorization` value of either flavor: `(flavor, access key id, signature)`.
pub fn parse_authorization(value: &str) -> Result<(Flavor, String, String), SignError> {
    let flavor = match value.trim_start().split(' ').next() {
        Some("AWS") => Flavor::AwsV2,
        _ => Flavor::Obs,
    };
    let (ak, sig) = parse_prefixed(value, flavor.auth_prefix())?;
    Ok((flavor, ak, sig))
}

/// Reads the access key id (`AccessKeyId`, or `AWSAccessKeyId` for [`Flavor::AwsV2`]),
/// `Expires` and `Signature` from a presigned URL's decoded query.
pub fn parse_presigned(flavor: Flavor, query: &[(String, String)]) -> Result<Presigned, SignError> {
    parse_presigned_with(query, flavor.access_key_param())
}

/// Signs with an `Authorization` header. Adds the token header and `Date` (from `time`, as the
/// OBS SDKs always send it) unless present.
pub fn sign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
    flavor: Flavor,
    resource: &Resource<'_>,
) -> Result<SignedRequest, SignError> {
    let url = RawUrl::parse(&request.url)?;
    let mut headers = request.headers.clone();
    add_header(&mut headers, "Date", || http_date(time));
    if let Some(token) = &credentials.security_token {
        add_header(&mut headers, flavor.token_header(), || {
            token.expose().to_owned()
        });
    }
    let resource = canonical_resource(flavor, resource, &query_pairs(url.query))?;
    let date = date_line(flavor, &headers);
    let string_to_sign = string_to_sign(flavor, &request.method, &headers, date, &resource);
    let signature = signature(credentials.secret_access_key.expose(), &string_to_sign);
    let authorization = authorization(flavor, &credentials.access_key_id, &signature);
    headers.push(("Authorization".to_owned(), authorization.clone()));
    Ok(SignedRequest {
        canonical_request: None,
        string_to_sign,
        signature,
        authorization: Some(authorization),
        url: request.url.clone(),
        headers,
    })
}

/// Signs into the URL's query, valid until `time + expires_secs`. As the OBS SDKs write it, every
/// query parameter (those the URL had, the token, `AccessKeyId`, `Expires`) is sorted by name,
/// values encoded with `/` kept, and `Signature` comes last.
pub fn presign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
    flavor: Flavor,
    resource: &Resource<'_>,
    expires_secs: u64,
) -> Result<SignedRequest, SignError> {
    if !(1..=MAX_PRESIGN_SECS).contains(&expires_secs) {
        return Err(SignError::InvalidExpiry(expires_secs));
    }
    let url = RawUrl::parse(&request.url)?;
    let expires = (time.unix_timestamp() + expires_secs as i64).to_string();
    // (decoded name, decoded value, as written in the URL)
    let mut params: Vec<(String, String, String)> = url
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|raw| {
            let (name, value) = query_pairs(Some(raw)).remove(0);
            (name, value, raw.to_owned())
        })
        .collect();
    let mut add = |name: &str, value: &str| {
        if !params.iter().any(|(n, _, _)| n == name) {
            let written = match value.is_empty() {
                true => uri_encode(name, true),
                false => format!("{}={}", uri_encode(name, true), uri_encode(value, true)),
            };
            params.push((name.to_owned(), value.to_owned(), written));
        }
    };
    if let Some(token) = &credentials.security_token {
        add(flavor.token_header(), token.expose());
    }
    add(flavor.access_key_param(), &credentials.access_key_id);
    add("Expires", &expires);
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect();
    let resource = canonical_resource(flavor, resource, &pairs)?;
    let string_to_sign = string_to_sign(
        flavor,
        &request.method,
        &request.headers,
        &expires,
        &resource,
    );
    let signature = signature(credentials.secret_access_key.expose(), &string_to_sign);
    let mut query: Vec<String> = params.into_iter().map(|(_, _, written)| written).collect();
    query.push(format!("Signature={}", uri_encode(&signature, true)));
    Ok(SignedRequest {
        canonical_request: None,
        string_to_sign,
        signature,
        authorization: None,
        url: format!(
            "{}://{}{}?{}",
            url.scheme,
            url.authority,
            url.path,
            query.join("&")
        ),
        headers: request.headers.clone(),
    })
}

#[cfg(test)]
#[path = "obs_tests.rs"]
mod tests;
