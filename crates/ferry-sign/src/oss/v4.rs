//! OSS Signature Version 4 (`OSS4-HMAC-SHA256`), header and presigned forms.
//!
//! Like SigV4 but with OSS's own rules: the canonical URI is `/<bucket>/<key>` (never the URL
//! path), only `content-type`, `content-md5`, `x-oss-*` and the `AdditionalHeaders` the caller
//! names are signed, a query parameter with an empty value is signed as its bare name, and the
//! signing key is derived from `aliyun_v4<secret>` through date, region, product and
//! `aliyun_v4_request`.

use time::OffsetDateTime;

use super::{CONTENT_SHA256_HEADER, DATE_HEADER, HEADER_PREFIX, TOKEN_HEADER};
use crate::sigv4::{UNSIGNED_PAYLOAD, amz_date, hmac, parse_amz_date, sha256_hex};
use crate::{
    RawUrl, Resource, SignError, SignedRequest, SigningCredentials, UnsignedRequest, add_header,
    header, query_pairs, uri_encode,
};

/// The algorithm name in headers and presigned URLs.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The last element of the credential scope.
pub const TERMINATOR: &str = "aliyun_v4_request";
/// Longest presigned URL lifetime OSS accepts.
pub const MAX_PRESIGN_SECS: u64 = 7 * 24 * 3600;

/// Where and when a request is signed.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// Region id without the `oss-` prefix (`cn-hangzhou`), or the CloudBox id.
    pub region: &'a str,
    /// [`super::PRODUCT`] or [`super::PRODUCT_CLOUDBOX`].
    pub product: &'a str,
    /// Signing time (UTC).
    pub time: OffsetDateTime,
}

impl Scope<'_> {
    /// `<date>/<region>/<product>/aliyun_v4_request`.
    pub fn credential_scope(&self) -> String {
        let date = &amz_date(self.time)[..8];
        format!("{date}/{}/{}/{TERMINATOR}", self.region, self.product)
    }
}

/// The names a caller asks to sign in addition, as the OSS SDKs treat them: lower-cased,
/// without duplicates, without those always signed (`content-type`, `content-md5`, `x-oss-*`),
/// sorted.
pub fn additional_headers<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .map(|n| n.as_ref().trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && !always_signed(n))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn always_signed(name: &str) -> bool {
    name == "content-type" || name == "content-md5" || name.starts_with(HEADER_PREFIX)
}

/// The canonical URI: `/<bucket>/<key>` percent-encoded with `/` kept (`/` alone without a
/// bucket).
pub fn canonical_uri(resource: &Resource<'_>) -> Result<String, SignError> {
    match (resource.bucket, resource.key) {
        (Some(bucket), key) => Ok(uri_encode(
            &format!("/{bucket}/{}", key.unwrap_or("")),
            true,
        )),
        (None, Some(_)) => Err(SignError::KeyWithoutBucket),
        (None, None) => Ok("/".to_owned()),
    }
}

/// The canonical query from decoded pairs: names and values encoded, sorted by name then value,
/// `name` alone when the value is empty; `x-oss-signature` (a presigned URL's own) left out.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(name, _)| name != "x-oss-signature")
        .map(|(n, v)| (uri_encode(n, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| match v.is_empty() {
            true => n.clone(),
            false => format!("{n}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request. `query` are the decoded pairs of the URL as received
/// ([`query_pairs`]), `headers` the request's headers, `additional` the normalised
/// [`additional_headers`], each of which must be present.
pub fn canonical_request(
    method: &str,
    resource: &Resource<'_>,
    query: &[(String, String)],
    headers: &[(String, String)],
    additional: &[String],
) -> Result<String, SignError> {
    let mut signed: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if !always_signed(&name) && !additional.contains(&name) {
            continue;
        }
        match signed.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(value.trim());
            }
            None => signed.push((name, value.trim().to_owned())),
        }
    }
    if let Some(missing) = additional
        .iter()
        .find(|a| !signed.iter().any(|(n, _)| n == *a))
    {
        return Err(SignError::MissingAdditionalHeader(missing.clone()));
    }
    signed.sort();
    let block: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let payload = header(headers, CONTENT_SHA256_HEADER).unwrap_or(UNSIGNED_PAYLOAD);
    Ok(format!(
        "{}\n{}\n{}\n{block}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(resource)?,
        canonical_query(query),
        additional.join(";"),
        payload.trim()
    ))
}

/// The string to sign: algorithm, time, scope and the hex SHA-256 of the canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        amz_date(scope.time),
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign` with the key derived from `secret` and the scope.
pub fn signature(secret: &str, scope: &Scope<'_>, string_to_sign: &str) -> String {
    let date = &amz_date(scope.time)[..8];
    let k_date = hmac(format!("aliyun_v4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, scope.region);
    let k_product = hmac(&k_region, scope.product);
    let k_signing = hmac(&k_product, TERMINATOR);
    hex::encode(hmac(&k_signing, string_to_sign))
}

/// The `Authorization` value, written as ali-oss and the OSS documentation's example write it:
/// `OSS4-HMAC-SHA256 Credential=<ak>/<scope>,AdditionalHeaders=<a;b>,Signature=<hex>`.
pub fn authorization(
    access_key_id: &str,
    scope: &Scope<'_>,
    additional: &[String],
    signature: &str,
) -> String {
    let additional = match additional.is_empty() {
        true => String::new(),
        false => format!("AdditionalHeaders={},", additional.join(";")),
    };
    format!(
        "{ALGORITHM} Credential={access_key_id}/{},{additional}Signature={signature}",
        scope.credential_scope()
    )
}

/// What an `Authorization` header (or a presigned URL's query) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id that signed.
    pub access_key_id: String,
    /// `YYYYMMDD` of the scope.
    pub date: String,
    /// Region (or CloudBox id) of the scope.
    pub region: String,
    /// Product of the scope (`oss`, `oss-cloudbox`).
    pub product: String,
    /// `AdditionalHeaders`, lower-cased as sent.
    pub additional_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

fn parse_credential(credential: &str) -> Result<(String, String, String, String), SignError> {
    let bad = || SignError::MalformedAuthorization(format!("credential {credential:?}"));
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next().ok_or_else(bad)?;
    let product = parts.next().ok_or_else(bad)?;
    let region = parts.next().ok_or_else(bad)?;
    let date = parts.next().ok_or_else(bad)?;
    let access_key_id = parts.next().ok_or_else(bad)?;
    if terminator != TERMINATOR || date.len() != 8 || access_key_id.is_empty() {
        return Err(bad());
    }
    Ok((
        access_key_id.into(),
        date.into(),
        region.into(),
        product.into(),
    ))
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Parses an `Authorization` value; accepts the fields in any order, with or without a space
/// after each comma (ali-oss writes none, oss2 and the documentation's syntax line one).
pub fn parse_authorization(value: &str) -> Result<Authorization, SignError> {
    let bad = |why: &str| SignError::MalformedAuthorization(why.to_owned());
    let rest = value
        .trim()
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| bad("not OSS4-HMAC-SHA256"))?;
    let (mut credential, mut additional, mut signature) = (None, Vec::new(), None);
    for field in rest.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("AdditionalHeaders", v)) => additional = split_list(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(bad("unknown field")),
        }
    }
    let (access_key_id, date, region, product) =
        parse_credential(credential.ok_or_else(|| bad("no Credential"))?)?;
    Ok(Authorization {
        access_key_id,
        date,
        region,
        product,
        additional_headers: additional,
        signature: signature.ok_or_else(|| bad("no Signature"))?.to_owned(),
    })
}

/// What a presigned URL's query says: who signed, when, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// Credential, additional headers and signature.
    pub authorization: Authorization,
    /// The signing time (`x-oss-date`).
    pub time: OffsetDateTime,
    /// Seconds from `time` the URL is valid (`x-oss-expires`).
    pub expires_secs: u64,
    /// The security token (`x-oss-security-token`), if any.
    pub security_token: Option<String>,
}

/// Reads the signing parameters of a presigned URL from its decoded query pairs.
pub fn parse_presigned(query: &[(String, String)]) -> Result<Presigned, SignError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let need = |name: &str| {
        get(name).ok_or_else(|| SignError::MalformedAuthorization(format!("no {name}")))
    };
    if need("x-oss-signature-version")? != ALGORITHM {
        return Err(SignError::MalformedAuthorization(
            "not OSS4-HMAC-SHA256".into(),
        ));
    }
    let (access_key_id, date, region, product) = parse_credential(need("x-oss-credential")?)?;
    let expires = need("x-oss-expires")?;
    Ok(Presigned {
        authorization: Authorization {
            access_key_id,
            date,
            region,
            product,
            additional_headers: get("x-oss-additional-headers")
                .map(split_list)
                .unwrap_or_default(),
            signature: need("x-oss-signature")?.to_owned(),
        },
        time: parse_amz_date(need("x-oss-date")?)?,
        expires_secs: expires
            .parse()
            .map_err(|_| SignError::MalformedAuthorization(format!("x-oss-expires {expires:?}")))?,
        security_token: get("x-oss-security-token").map(str::to_owned),
    })
}

/// Adds `host` when the caller asked to sign it and did not set it.
fn with_host(headers: &mut Vec<(String, String)>, url: &RawUrl<'_>, additional: &[String]) {
    if additional.iter().any(|a| a == "host") {
        add_header(headers, "host", || url.host().to_owned());
    }
}

/// Signs with an `Authorization` header. Adds `x-oss-date` (from the scope's time),
/// `x-oss-content-sha256: UNSIGNED-PAYLOAD` and `x-oss-security-token` unless present; an
/// `x-oss-date` already present is the signing time, as the SDKs and the store read it.
pub fn sign<S: AsRef<str>>(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    scope: &Scope<'_>,
    resource: &Resource<'_>,
    additional_headers: &[S],
) -> Result<SignedRequest, SignError> {
    let url = RawUrl::parse(&request.url)?;
    let additional = self::additional_headers(additional_headers);
    let mut headers = request.headers.clone();
    add_header(&mut headers, DATE_HEADER, || amz_date(scope.time));
    add_header(&mut headers, CONTENT_SHA256_HEADER, || {
        UNSIGNED_PAYLOAD.into()
    });
    if let Some(token) = &credentials.security_token {
        add_header(&mut headers, TOKEN_HEADER, || token.expose().to_owned());
    }
    with_host(&mut headers, &url, &additional);
    let scope = Scope {
        time: parse_amz_date(header(&headers, DATE_HEADER).unwrap_or_default().trim())?,
        ..scope.clone()
    };
    let canonical = canonical_request(
        &request.method,
        resource,
        &query_pairs(url.query),
        &headers,
        &additional,
    )?;
    let string_to_sign = string_to_sign(&scope, &canonical);
    let signature = signature(
        credentials.secret_access_key.expose(),
        &scope,
        &string_to_sign,
    );
    let authorization = authorization(&credentials.access_key_id, &scope, &additional, &signature);
    headers.push(("Authorization".to_owned(), authorization.clone()));
    Ok(SignedRequest {
        canonical_request: Some(canonical),
        string_to_sign,
        signature,
        authorization: Some(authorization),
        url: request.url.clone(),
        headers,
    })
}

/// Signs into the URL's query, valid `expires_secs` from the scope's time. The query gets, after
/// what it had, `x-oss-additional-headers`, `x-oss-credential`, `x-oss-date`, `x-oss-expires`,
/// `x-oss-signature-version`, `x-oss-security-token` and last `x-oss-signature` (ali-oss's order).
pub fn presign<S: AsRef<str>>(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    scope: &Scope<'_>,
    resource: &Resource<'_>,
    additional_headers: &[S],
    expires_secs: u64,
) -> Result<SignedRequest, SignError> {
    if !(1..=MAX_PRESIGN_SECS).contains(&expires_secs) {
        return Err(SignError::InvalidExpiry(expires_secs));
    }
    let url = RawUrl::parse(&request.url)?;
    let additional = self::additional_headers(additional_headers);
    let mut headers = request.headers.clone();
    with_host(&mut headers, &url, &additional);
    let mut added: Vec<(&str, String)> = Vec::new();
    if !additional.is_empty() {
        added.push(("x-oss-additional-headers", additional.join(";")));
    }
    added.push((
        "x-oss-credential",
        format!("{}/{}", credentials.access_key_id, scope.credential_scope()),
    ));
    added.push(("x-oss-date", amz_date(scope.time)));
    added.push(("x-oss-expires", expires_secs.to_string()));
    added.push(("x-oss-signature-version", ALGORITHM.to_owned()));
    if let Some(token) = &credentials.security_token {
        added.push((TOKEN_HEADER, token.expose().to_owned()));
    }
    let mut query = query_pairs(url.query);
    query.extend(added.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    let canonical = canonical_request(&request.method, resource, &query, &headers, &additional)?;
    let string_to_sign = string_to_sign(scope, &canonical);
    let signature = signature(
        credentials.secret_access_key.expose(),
        scope,
        &string_to_sign,
    );
    let mut parts: Vec<String> = url
        .query
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    parts.extend(
        added
            .iter()
            .map(|(n, v)| format!("{n}={}", uri_encode(v, false))),
    );
    parts.push(format!("x-oss-signature={signature}"));
    Ok(SignedRequest {
        canonical_request: Some(canonical),
        string_to_sign,
        signature,
        authorization: None,
        url: format!(
            "{}://{}{}?{}",
            url.scheme,
            url.authority,
            url.path,
            parts.join("&")
        ),
        headers,
    })
}

#[cfg(test)]
#[path = "v4_tests.rs"]
mod tests;
