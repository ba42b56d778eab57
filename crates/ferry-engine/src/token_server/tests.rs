use serde_json::json;

use super::*;

fn profile(shape: TokenShape, storage: StorageSite) -> TokenServer {
    TokenServer {
        token_url: "https://app.example.com/sts".into(),
        shape,
        auth: TokenAuth::Basic,
        method: TokenMethod::Get,
        storage,
    }
}

fn oss_site() -> StorageSite {
    StorageSite {
        provider: Provider::Oss,
        endpoint: Some("https://oss-cn-hangzhou.aliyuncs.com".into()),
        addressing: None,
        signature_version: SignatureVersion::V4,
        region: Some("cn-hangzhou".into()),
        bucket: Some("photos".into()),
        prefix: Some("users/{user}/".into()),
    }
}

/// The sample answer of STS AssumeRole in Alibaba Cloud's API reference (masked values as
/// published), passed through by an app server.
#[test]
fn alibabas_documented_assume_role_answer() {
    let body = json!({
        "RequestId": "6894B13B-6D71-4EF5-88FA-F32781734A7F",
        "AssumedRoleUser": {
            "AssumedRoleId": "34458433936495****:alice",
            "Arn": "acs:ram::123456789012****:role/aliyunserviceroleforecs/alice"
        },
        "Credentials": {
            "SecurityToken": "********",
            "Expiration": "2015-04-09T11:52:19Z",
            "AccessKeySecret": "wyLTSmsyPGP1ohvvw8xYgB29dlGI8KMiH2pK****",
            "AccessKeyId": "STS.L4aBSCSJVMuKg5U1****"
        }
    });
    let grant = profile(TokenShape::AliyunSts, oss_site())
        .grant(body.to_string().as_bytes(), "alice")
        .unwrap();
    assert_eq!(grant.access_key_id, "STS.L4aBSCSJVMuKg5U1****");
    assert_eq!(
        grant.secret_access_key,
        "wyLTSmsyPGP1ohvvw8xYgB29dlGI8KMiH2pK****"
    );
    assert_eq!(grant.security_token, "********");
    assert_eq!(grant.expires_at.unix_timestamp(), 1_428_580_339);
    assert_eq!(grant.provider, Provider::Oss);
    assert_eq!(grant.addressing, Addressing::VirtualHosted);
    assert_eq!(grant.endpoint, "https://oss-cn-hangzhou.aliyuncs.com");
    assert_eq!(
        (grant.bucket.as_str(), grant.prefix.as_str()),
        ("photos", "users/alice/")
    );
    assert_eq!(grant.region, "cn-hangzhou");
}

/// The tutorials' app server answers the credentials at the top level with a `StatusCode`.
#[test]
fn the_tutorials_flat_answer_and_its_errors() {
    let ok = json!({
        "StatusCode": 200,
        "AccessKeyId": "STS.ak",
        "AccessKeySecret": "sk",
        "SecurityToken": "tok",
        "Expiration": "2026-11-26T12:00:00Z"
    });
    let grant = profile(TokenShape::AliyunSts, oss_site())
        .grant(ok.to_string().as_bytes(), "bob")
        .unwrap();
    assert_eq!(
        (grant.access_key_id.as_str(), grant.prefix.as_str()),
        ("STS.ak", "users/bob/")
    );

    let failed = json!({"StatusCode": 500, "ErrorCode": "NoPermission", "ErrorMessage": "denied"});
    let err = profile(TokenShape::AliyunSts, oss_site())
        .grant(failed.to_string().as_bytes(), "bob")
        .unwrap_err();
    assert!(err.to_string().contains("NoPermission"), "{err}");

    for broken in [
        &b"<html>"[..],
        br#"{"AccessKeyId": "a"}"#,
        br#"{"StatusCode": 200}"#,
    ] {
        let err = profile(TokenShape::AliyunSts, oss_site())
            .grant(broken, "bob")
            .unwrap_err();
        assert_eq!(err.code(), "protocol", "{err}");
    }
}

/// Huawei Workspace's authorize answer (field names and shapes of its API reference).
#[test]
fn huaweis_workspace_answer() {
    let body = json!({
        "server_end_point": "obs.cn-north-4.myhuaweicloud.com",
        "bucket_name": "wks-app-26a0420e9e284569a23f1b2f7d9b5011",
        "directory": "file",
        "ak": "UMLEXAMPLEDIP",
        "sk": "secret",
        "security_token": "token",
        "expires_at": "2026-11-26T12:00:00.000000Z",
        "policy": {"version": "1.1", "statement": [{"effect": "Allow",
            "action": ["obs:object:PutObject"],
            "resource": ["obs:*:*:object:wks-app-26a0420e9e284569a23f1b2f7d9b5011/file/*"]}]}
    });
    let site = StorageSite {
        provider: Provider::Obs,
        endpoint: None,
        addressing: None,
        signature_version: SignatureVersion::V4,
        region: Some("cn-north-4".into()),
        bucket: None,
        prefix: None,
    };
    let grant = profile(TokenShape::HuaweiWorkspace, site)
        .grant(body.to_string().as_bytes(), "carol")
        .unwrap();
    assert_eq!(grant.endpoint, "https://obs.cn-north-4.myhuaweicloud.com");
    assert_eq!(grant.bucket, "wks-app-26a0420e9e284569a23f1b2f7d9b5011");
    assert_eq!(grant.prefix, "file/");
    assert_eq!(
        (grant.access_key_id.as_str(), grant.security_token.as_str()),
        ("UMLEXAMPLEDIP", "token")
    );
    assert_eq!(grant.expires_at.unix_timestamp(), 1_795_694_400);
    assert_eq!(
        crate::policy::verdict(&grant.policy, &grant.bucket, "file/setup.zip"),
        crate::policy::Verdict::Allowed
    );

    // The answer names the store: plain http is taken only to this computer, as a profile's.
    let with_host = |host: &str| {
        let mut body = body.clone();
        body["server_end_point"] = json!(host);
        profile(TokenShape::HuaweiWorkspace, oss_site_without_endpoint())
            .grant(body.to_string().as_bytes(), "carol")
    };
    let err = with_host("http://obs.cn-north-4.myhuaweicloud.com").unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    assert!(with_host("ftp://obs.example.com").is_err());
    assert_eq!(
        with_host("http://127.0.0.1:9000").unwrap().endpoint,
        "http://127.0.0.1:9000"
    );
}

fn oss_site_without_endpoint() -> StorageSite {
    StorageSite {
        endpoint: None,
        bucket: None,
        prefix: None,
        ..oss_site()
    }
}

#[test]
fn expiries_in_seconds_or_milliseconds() {
    assert_eq!(
        expiry(Some(&json!(1_795_694_400)))
            .unwrap()
            .unix_timestamp(),
        1_795_694_400
    );
    assert_eq!(
        expiry(Some(&json!(1_795_694_400_000i64)))
            .unwrap()
            .unix_timestamp(),
        1_795_694_400
    );
    assert!(expiry(Some(&json!("tomorrow"))).is_err());
    assert!(expiry(None).is_err());
}

#[test]
fn profiles_read_from_toml_and_the_authorization_they_send() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("company.toml");
    std::fs::write(
        &path,
        r#"
token_url = "https://app.example.com/sts"
shape = "aliyun_sts"
auth = "bearer"

[storage]
provider = "oss"
endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
region = "cn-hangzhou"
bucket = "photos"
prefix = "users/{user}/"
"#,
    )
    .unwrap();
    let server = TokenServer::load(&path).unwrap();
    assert_eq!(server.storage, oss_site());
    assert_eq!(server.method, TokenMethod::Get);
    assert_eq!(
        server.authorization("x", &Secret::new("t0k")).expose(),
        "Bearer t0k"
    );
    let basic = TokenServer {
        auth: TokenAuth::Basic,
        ..server.clone()
    };
    assert_eq!(
        basic.authorization("alice", &Secret::new("pw")).expose(),
        "Basic YWxpY2U6cHc="
    );
    std::fs::write(&path, "token_url = 1").unwrap();
    assert_eq!(TokenServer::load(&path).unwrap_err().code(), "protocol");
    assert_ne!(TokenServer::user("alice").id, TokenServer::user("bob").id);
    assert_eq!(TokenServer::user("alice"), TokenServer::user("alice"));
}

#[test]
fn a_user_name_that_is_not_one_folder_name_is_refused_for_the_prefix() {
    let body = json!({"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t",
                      "Expiration": "2026-11-26T12:00:00Z"});
    let server = profile(TokenShape::AliyunSts, oss_site());
    for name in ["", ".", "..", "a/b", "../bob", "a\\b", "a\nb"] {
        let err = server.grant(body.to_string().as_bytes(), name).unwrap_err();
        assert!(
            err.to_string().contains("one folder name"),
            "{name:?}: {err}"
        );
    }
    let grant = server.grant(body.to_string().as_bytes(), "erin.w").unwrap();
    assert!(grant.prefix.ends_with("erin.w/"), "{}", grant.prefix);
}
