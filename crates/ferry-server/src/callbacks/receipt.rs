//! Reading a callback the app server received: the public key URL OSS names, and the fields of
//! Ferry's body template (form or JSON) as a confirmation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::Confirmation;

use super::keys::KeyFetchError;

/// The URL `x-oss-pub-key-url` names (it is base64).
pub(super) fn public_key_url(header: Option<&str>) -> Result<String, KeyFetchError> {
    let bytes = STANDARD
        .decode(header.ok_or(KeyFetchError::BadUrl)?.trim())
        .map_err(|_| KeyFetchError::BadUrl)?;
    String::from_utf8(bytes).map_err(|_| KeyFetchError::BadUrl)
}

/// The fields of a callback body filled from Ferry's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fields {
    pub(super) bucket: String,
    pub(super) object: String,
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) upload_id: String,
    pub(super) name: String,
    pub(super) device: Option<String>,
    pub(super) grant: String,
}

fn pairs(content_type: Option<&str>, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let json = content_type.is_some_and(|t| t.trim().starts_with("application/json"));
    if json {
        let map: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
        return Ok(map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect());
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    Ok(text
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| ferry_sign::percent_decode(&s.replace('+', " "));
            (decode(name), decode(value))
        })
        .collect())
}

impl Fields {
    /// The fields of a form (or, by its content type, JSON) body.
    pub(super) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let pairs = pairs(content_type, body)?;
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let need = |name: &str| get(name).ok_or_else(|| format!("its body has no {name}"));
        Ok(Self {
            bucket: need("bucket")?,
            object: need("object")?,
            etag: need("etag")?,
            size: need("size")?
                .parse()
                .map_err(|_| "its size is not a number".to_owned())?,
            upload_id: need("upload_id")?,
            name: need("name")?,
            device: get("device"),
            grant: need("grant")?,
        })
    }

    /// What the callback confirms, as a client would have.
    pub(super) fn confirmation(&self) -> Confirmation {
        Confirmation {
            upload_id: self.upload_id.clone(),
            bucket: self.bucket.clone(),
            key: self.object.clone(),
            size: self.size,
            etag: self.etag.clone(),
            checksum: None,
            name: self.name.clone(),
            device: self.device.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_json_bodies_read_the_same() {
        let form = b"bucket=ferry&object=uploads%2F1%2Fa+b&etag=ABC&size=5&mimeType=x\
                     &upload_id=d-1&name=a%20b&device=&grant=1.2.t";
        let fields = Fields::parse(Some("application/x-www-form-urlencoded"), form).unwrap();
        assert_eq!(fields.object, "uploads/1/a b");
        assert_eq!(fields.name, "a b");
        assert_eq!(fields.device, None);
        assert_eq!(fields.size, 5);
        let json = br#"{"bucket":"ferry","object":"uploads/1/a b","etag":"ABC","size":5,
                        "upload_id":"d-1","name":"a b","grant":"1.2.t"}"#;
        assert_eq!(
            Fields::parse(Some("application/json"), json).unwrap(),
            fields
        );
        assert!(Fields::parse(None, b"bucket=ferry").is_err());
        assert!(
            Fields::parse(
                None,
                b"bucket=a&object=b&etag=c&size=x&upload_id=u&name=n&grant=g"
            )
            .is_err()
        );
    }

    #[test]
    fn the_key_url_is_base64() {
        let url = STANDARD.encode("http://127.0.0.1:1/k.pem");
        assert_eq!(
            public_key_url(Some(&url)).unwrap(),
            "http://127.0.0.1:1/k.pem"
        );
        assert_eq!(public_key_url(None), Err(KeyFetchError::BadUrl));
        assert_eq!(public_key_url(Some("%%")), Err(KeyFetchError::BadUrl));
    }
}
