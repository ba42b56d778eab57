//! The session policies brokers send with each call, in each cloud's grammar: uploads under the
//! user's prefix of one bucket, and listing that prefix's unfinished uploads, nothing else. The
//! cloud intersects it with the role's own permissions, so a grant can never do more.
//!
//! Fields are declared in the order the vendors' SDKs write them (Huawei's models reorder a
//! policy into `Action, Effect, Condition, Resource`), so a signed body is the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

/// An IAM-style policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Policy {
    #[serde(rename = "Version")]
    pub(crate) version: &'static str,
    #[serde(rename = "Statement")]
    pub(crate) statement: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Statement {
    #[serde(rename = "Action")]
    pub(crate) action: Vec<String>,
    #[serde(rename = "Effect")]
    pub(crate) effect: &'static str,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub(crate) condition: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
    #[serde(rename = "Resource")]
    pub(crate) resource: Vec<String>,
}

impl Policy {
    /// The policy as compact JSON (for clouds that take it as a string parameter).
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy serialises")
    }

    /// The policy as a JSON value, as grants carry it.
    pub(crate) fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a policy serialises")
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn condition(
    operator: &str,
    key: &str,
    value: String,
) -> Option<BTreeMap<String, BTreeMap<String, Vec<String>>>> {
    Some(BTreeMap::from([(
        operator.to_owned(),
        BTreeMap::from([(key.to_owned(), vec![value])]),
    )]))
}

/// Two statements: `objects` on `object_resource`, and listing uploads on `bucket_resource`
/// when the listing's prefix is within the user's.
fn two_statements(
    version: &'static str,
    objects: &[&str],
    object_resource: String,
    list: &str,
    bucket_resource: String,
    list_condition: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
) -> Policy {
    Policy {
        version,
        statement: vec![
            Statement {
                action: strings(objects),
                effect: "Allow",
                condition: None,
                resource: vec![object_resource],
            },
            Statement {
                action: strings(&[list]),
                effect: "Allow",
                condition: list_condition,
                resource: vec![bucket_resource],
            },
        ],
    }
}

/// AWS (and MinIO, Ceph RGW): the actions Ferry's uploader uses.
pub(crate) fn aws(bucket: &str, prefix: &str) -> Policy {
    two_statements(
        "2012-10-17",
        &[
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
        format!("arn:aws:s3:::{bucket}/{prefix}*"),
        "s3:ListBucketMultipartUploads",
        format!("arn:aws:s3:::{bucket}"),
        condition("StringLike", "s3:prefix", format!("{prefix}*")),
    )
}

/// Alibaba Cloud RAM policy for OSS.
pub(crate) fn aliyun(bucket: &str, prefix: &str) -> Policy {
    two_statements(
        "1",
        &["oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"],
        format!("acs:oss:*:*:{bucket}/{prefix}*"),
        "oss:ListMultipartUploads",
        format!("acs:oss:*:*:{bucket}"),
        condition("StringLike", "oss:Prefix", format!("{prefix}*")),
    )
}

/// Huawei Cloud IAM policy for OBS (the temporary credential policy accepts OBS actions only).
pub(crate) fn huawei(bucket: &str, prefix: &str) -> Policy {
    two_statements(
        "1.1",
        &[
            "obs:object:PutObject",
            "obs:object:AbortMultipartUpload",
            "obs:object:ListMultipartUploadParts",
        ],
        format!("OBS:*:*:object:{bucket}/{prefix}*"),
        "obs:bucket:ListBucketMultipartUploads",
        format!("OBS:*:*:bucket:{bucket}"),
        condition("StringStartWith", "obs:prefix", prefix.to_owned()),
    )
}

/// JD Cloud IAM policy for its S3-compatible OSS: uploads under the prefix only. Listing
/// unfinished uploads is left out: JD Cloud documents no prefix condition for it, and the
/// whole bucket's list would show other users' file names (the uploader only misses its
/// sweep of uploads begun but never journaled, which it tolerates).
pub(crate) fn jdcloud(bucket: &str, prefix: &str) -> Policy {
    let mut policy = two_statements(
        "3",
        &[
            "oss:PutObject",
            "oss:AbortMultipartUpload",
            "oss:ListMultipartUploadParts",
        ],
        format!("jrn:oss:*:*:{bucket}/{prefix}*"),
        "oss:ListMultipartUploads",
        format!("jrn:oss:*:*:{bucket}"),
        None,
    );
    policy.statement.truncate(1);
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_names_only_the_users_prefix() {
        for policy in [
            aws("b", "uploads/7/"),
            aliyun("b", "uploads/7/"),
            huawei("b", "uploads/7/"),
            jdcloud("b", "uploads/7/"),
        ] {
            let objects = &policy.statement[0];
            assert!(
                policy.statement[1..].iter().all(|s| s.condition.is_some()),
                "listing only within the prefix: {policy:?}"
            );
            assert_eq!(objects.effect, "Allow");
            assert!(objects.resource[0].ends_with("b/uploads/7/*"), "{policy:?}");
            assert!(
                objects
                    .action
                    .iter()
                    .all(|a| !a.contains('*') && !a.contains("Get")),
                "uploads only: {policy:?}"
            );
        }
    }

    #[test]
    fn huawei_fields_come_in_the_sdk_order() {
        let json = huawei("b", "uploads/1/").to_json();
        let order = ["\"Action\"", "\"Effect\"", "\"Condition\"", "\"Resource\""];
        let second = &json[json.find("},{").unwrap()..];
        let positions: Vec<usize> = order.iter().map(|k| second.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    }
}
