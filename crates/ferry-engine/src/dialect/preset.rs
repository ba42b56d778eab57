//! Where each cloud's object storage answers, for app servers that give only a region (the
//! vendors' tutorials do): the endpoint and the URL style Ferry uses there. JD Cloud speaks the
//! `s3` dialect at its own endpoints, with session credentials from its STS.

use ferry_protocol::{Addressing, Provider};

/// A cloud's object storage as Ferry addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The dialect.
    pub provider: Provider,
    /// The endpoint (no bucket in it).
    pub endpoint: String,
    /// How the bucket appears in URLs there.
    pub addressing: Addressing,
}

/// The preset of `cloud` (`aws`, `oss`, `obs`, `jdcloud`) in `region`; `path_style` asks for
/// path-style URLs where the cloud takes them (AWS, JD Cloud; OSS and OBS refuse them).
pub fn preset(cloud: &str, region: &str, path_style: bool) -> Option<Preset> {
    let style = |allowed: bool| {
        if path_style && allowed {
            Addressing::Path
        } else {
            Addressing::VirtualHosted
        }
    };
    let (provider, endpoint, addressing) = match cloud {
        "aws" => (
            Provider::S3,
            format!("https://s3.{region}.amazonaws.com"),
            style(true),
        ),
        "jdcloud" => (
            Provider::S3,
            format!("https://s3.{region}.jdcloud-oss.com"),
            style(true),
        ),
        "oss" | "aliyun" => (
            Provider::Oss,
            format!("https://oss-{region}.aliyuncs.com"),
            style(false),
        ),
        "obs" | "huawei" => (
            Provider::Obs,
            format!("https://obs.{region}.myhuaweicloud.com"),
            style(false),
        ),
        _ => return None,
    };
    Some(Preset {
        provider,
        endpoint,
        addressing,
    })
}
