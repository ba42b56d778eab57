//! What a grant's `callback` says: the app server's endpoint for the grant's provider, the body
//! template in that provider's variable syntax, and a token (`x:grant`) that names the user and
//! how long callbacks of this grant are accepted, signed with the server's key so a callback
//! cannot claim another user or live forever.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_protocol::{CallbackSpec, Provider};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The custom variables every template ends with; the client fills the first three per file.
const CUSTOM: &str = "upload_id=${x:upload_id}&name=${x:name}&device=${x:device}&grant=${x:grant}";

/// The body type of Ferry's templates.
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// The body template for `provider`, in its variable syntax (OSS `${…}`, OBS `$(…)`).
fn template(provider: Provider) -> Option<String> {
    let system = match provider {
        Provider::Oss => {
            "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}"
        }
        Provider::Obs => "bucket=$(bucket)&object=$(key)&etag=$(etag)&size=$(fsize)",
        Provider::S3 => return None,
    };
    Some(format!("{system}&{CUSTOM}"))
}

/// The path of `provider`'s callback endpoint under the API.
pub(crate) fn path(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Oss => Some("/api/v1/callbacks/oss"),
        Provider::Obs => Some("/api/v1/callbacks/obs"),
        Provider::S3 => None,
    }
}

/// Who a grant token names, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantToken {
    pub(crate) user_id: i64,
    /// Until when (Unix seconds) callbacks carrying it are accepted.
    pub(crate) until: i64,
}

fn mac(key: &[u8; 32], user_id: i64, until: i64) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(format!("ferry-callback\0{user_id}.{until}").as_bytes());
    mac.finalize().into_bytes()[..16].to_vec()
}

impl GrantToken {
    /// The token as the grant carries it: `<user>.<until>.<mac>`.
    pub(crate) fn encode(self, key: &[u8; 32]) -> String {
        let tag = URL_SAFE_NO_PAD.encode(mac(key, self.user_id, self.until));
        format!("{}.{}.{tag}", self.user_id, self.until)
    }

    /// The token `value` names, if `key` signed it.
    pub(crate) fn decode(value: &str, key: &[u8; 32]) -> Option<Self> {
        let mut fields = value.splitn(3, '.');
        let user_id: i64 = fields.next()?.parse().ok()?;
        let until: i64 = fields.next()?.parse().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(fields.next()?).ok()?;
        bool::from(tag.ct_eq(&mac(key, user_id, until))).then_some(Self { user_id, until })
    }
}

/// The callback spec of a `provider` grant for `token`, or `None` for providers without
/// native callbacks.
pub(crate) fn build(
    provider: Provider,
    api_url: &str,
    token: GrantToken,
    key: &[u8; 32],
) -> Option<CallbackSpec> {
    let url = format!("{}{}", api_url.trim_end_matches('/'), path(provider)?);
    Some(CallbackSpec {
        url,
        body: template(provider)?,
        body_type: FORM.into(),
        vars: [("x:grant".to_owned(), token.encode(key))].into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_any_change() {
        let key = [7u8; 32];
        let token = GrantToken {
            user_id: 42,
            until: 1_900_000_000,
        };
        let encoded = token.encode(&key);
        assert_eq!(GrantToken::decode(&encoded, &key), Some(token));
        assert_eq!(GrantToken::decode(&encoded, &[8u8; 32]), None);
        let other_user = encoded.replacen("42.", "43.", 1);
        assert_eq!(GrantToken::decode(&other_user, &key), None);
        let later = encoded.replacen(".1900000000.", ".1900000001.", 1);
        assert_eq!(GrantToken::decode(&later, &key), None);
        assert_eq!(GrantToken::decode("", &key), None);
    }

    #[test]
    fn specs_exist_for_oss_and_obs_only() {
        let token = GrantToken {
            user_id: 1,
            until: 2,
        };
        let oss = build(Provider::Oss, "http://h:1/", token, &[0; 32]).unwrap();
        assert_eq!(oss.url, "http://h:1/api/v1/callbacks/oss");
        assert!(oss.body.starts_with("bucket=${bucket}&object=${object}"));
        assert!(oss.vars.contains_key("x:grant"));
        let obs = build(Provider::Obs, "http://h:1", token, &[0; 32]).unwrap();
        assert!(obs.body.contains("object=$(key)"));
        assert!(build(Provider::S3, "http://h:1", token, &[0; 32]).is_none());
    }
}
