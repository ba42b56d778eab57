//! The grant's policy, read before the first byte: a key the policy does not let the grant write
//! is refused as `outside_grant` (with the prefixes it does allow) instead of failing with
//! `AccessDenied` after a part has been sent.
//!
//! Policies come in the shapes app servers hand out: IAM-style JSON (`Statement` with `Effect`,
//! `Action`, `Resource`; AWS, MinIO, Alibaba RAM, Ferry's own), the same with lower-case names
//! (Huawei's `statement` / `effect` / `action` / `resource`), a single statement or a list, or
//! the whole policy as a JSON string. Resources name objects as `arn:<partition>:s3:::<bucket>/<key>`,
//! `acs:oss:<region>:<account>:<bucket>/<key>` (JD Cloud: `jrn:oss:…`) or
//! `obs:<region>:<account>:object:<bucket>/<key>` (scheme in any case), with `*` and `?`
//! wildcards.
//!
//! The reading is deliberately generous where it cannot be sure: no policy, an empty one, or
//! one without statements allows everything (the store still decides); a statement with a
//! `Condition` cannot be evaluated here, so a conditional `Allow` counts as allowing and a
//! conditional `Deny` as not denying. What is refused is what the policy plainly does not
//! allow: no `Allow` covers the write, or an unconditional `Deny` does.

use serde_json::Value;

/// The names of "write an object" in each vendor's action vocabulary.
const WRITE_ACTIONS: [&str; 3] = ["s3:PutObject", "oss:PutObject", "obs:object:PutObject"];

/// What a policy says about writing one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The write is allowed (or the policy cannot tell).
    Allowed,
    /// The write is not allowed; these are the places writes are allowed (`bucket/prefix`), if
    /// the policy names any.
    Outside {
        /// The `bucket/prefix` patterns the policy's `Allow` statements name, wildcards cut off.
        allowed: Vec<String>,
    },
}

/// One statement, its names read in either case.
struct Statement<'a> {
    allow: bool,
    actions: Vec<&'a str>,
    resources: Vec<&'a str>,
    conditional: bool,
}

/// Whether `policy` lets its grant write `key` in `bucket`.
pub fn verdict(policy: &Value, bucket: &str, key: &str) -> Verdict {
    let parsed;
    let policy = match policy {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                parsed = value;
                &parsed
            }
            Err(_) => return Verdict::Allowed,
        },
        other => other,
    };
    let statements = statements(policy);
    if statements.is_empty() {
        return Verdict::Allowed;
    }
    let object = format!("{bucket}/{key}");
    let writes = |s: &Statement<'_>| s.actions.iter().any(|a| names_a_write(a));
    let covers = |s: &Statement<'_>| s.resources.iter().any(|r| names_object(r, &object));
    let denied = statements
        .iter()
        .any(|s| !s.allow && !s.conditional && writes(s) && covers(s));
    let allowed = statements.iter().any(|s| s.allow && writes(s) && covers(s));
    if allowed && !denied {
        return Verdict::Allowed;
    }
    let allowed = statements
        .iter()
        .filter(|s| s.allow && writes(s))
        .flat_map(|s| s.resources.iter().filter_map(|r| object_pattern(r)))
        .map(|pattern| pattern.split(['*', '?']).next().unwrap_or("").to_owned())
        .collect();
    Verdict::Outside { allowed }
}

/// The statements of a policy, whichever case its names are in.
fn statements(policy: &Value) -> Vec<Statement<'_>> {
    let list = field(policy, "Statement");
    let list: Vec<&Value> = match list {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|s| Statement {
            allow: field(s, "Effect")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case("allow")),
            actions: strings(field(s, "Action")),
            resources: strings(field(s, "Resource")),
            conditional: field(s, "Condition").is_some_and(|c| !c.is_null()),
        })
        .collect()
}

/// `name` or its lower-case form.
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .get(name)
        .or_else(|| value.get(name.to_ascii_lowercase()))
}

/// A string or a list of strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether an action pattern covers writing an object (action names compare case-insensitively).
fn names_a_write(pattern: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    WRITE_ACTIONS
        .iter()
        .any(|action| glob(&pattern, &action.to_ascii_lowercase()))
}

/// Whether a resource pattern covers `object` (`bucket/key`).
fn names_object(pattern: &str, object: &str) -> bool {
    pattern == "*" || object_pattern(pattern).is_some_and(|p| glob(p, object))
}

/// The `bucket/key` part of an object resource pattern, in any of the three vendors' forms.
fn object_pattern(resource: &str) -> Option<&str> {
    let fields = |n: usize| resource.splitn(n, ':').collect::<Vec<_>>();
    // Vendors write the scheme in either case (Huawei's own examples use `OBS:` and `obs:`).
    let rest = match resource.split(':').next()?.to_ascii_lowercase().as_str() {
        "arn" => match fields(6).as_slice() {
            [_, _partition, service, _region, _account, rest] if glob(service, "s3") => Some(*rest),
            _ => None,
        },
        "acs" | "jrn" => match fields(5).as_slice() {
            [_, service, _region, _account, rest] if glob(service, "oss") => Some(*rest),
            _ => None,
        },
        "obs" => match fields(5).as_slice() {
            [_, _region, _account, kind, rest] if kind.eq_ignore_ascii_case("object") => {
                Some(*rest)
            }
            _ => None,
        },
        _ => None,
    };
    rest.filter(|rest| rest.contains('/') || rest.contains('*'))
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters and `?` for
/// one. Iterative with one backtrack point, so it is linear-ish and never recurses.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outside(allowed: &[&str]) -> Verdict {
        Verdict::Outside {
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn ferrys_own_policy_allows_the_users_prefix_only() {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                 "Resource": ["arn:aws:s3:::ferry/uploads/7/*"]},
                {"Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"],
                 "Resource": ["arn:aws:s3:::ferry"],
                 "Condition": {"StringLike": {"s3:prefix": ["uploads/7/*"]}}}
            ]
        });
        assert_eq!(
            verdict(&policy, "ferry", "uploads/7/a/b.txt"),
            Verdict::Allowed
        );
        assert_eq!(
            verdict(&policy, "ferry", "uploads/8/a.txt"),
            outside(&["ferry/uploads/7/"])
        );
        assert_eq!(
            verdict(&policy, "other", "uploads/7/a.txt"),
            outside(&["ferry/uploads/7/"])
        );
    }

    #[test]
    fn alibaba_ram_policies_and_policies_sent_as_strings() {
        let policy = json!({
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": ["oss:PutObject"],
                           "Resource": ["acs:oss:*:*:photos/team-a/*"]}]
        });
        assert_eq!(verdict(&policy, "photos", "team-a/x.jpg"), Verdict::Allowed);
        assert_eq!(
            verdict(&policy, "photos", "team-a/a:b.jpg"),
            Verdict::Allowed
        );
        let as_text = Value::String(policy.to_string());
        assert_eq!(
            verdict(&as_text, "photos", "team-b/x.jpg"),
            outside(&["photos/team-a/"])
        );
    }

    #[test]
    fn huaweis_lower_case_statement_object() {
        let policy = json!({
            "version": "1.1",
            "statement": {"effect": "Allow", "action": ["obs:object:PutObject"],
                          "resource": ["obs:*:*:object:wks-app/file/*"]}
        });
        assert_eq!(
            verdict(&policy, "wks-app", "file/setup.zip"),
            Verdict::Allowed
        );
        assert_eq!(
            verdict(&policy, "wks-app", "elsewhere/setup.zip"),
            outside(&["wks-app/file/"])
        );
    }

    #[test]
    fn resource_schemes_in_upper_case_and_jd_clouds_jrn() {
        for resource in [
            "OBS:*:*:object:b/u/7/*",
            "jrn:oss:*:*:b/u/7/*",
            "ARN:aws:s3:::b/u/7/*",
        ] {
            let action = if resource.starts_with("OBS") {
                "obs:object:PutObject"
            } else if resource.starts_with("jrn") {
                "oss:PutObject"
            } else {
                "s3:PutObject"
            };
            let policy = json!({"Statement": [{"Effect": "Allow", "Action": [action],
                                               "Resource": [resource]}]});
            assert_eq!(
                verdict(&policy, "b", "u/7/f"),
                Verdict::Allowed,
                "{resource}"
            );
            assert_eq!(
                verdict(&policy, "b", "u/8/f"),
                outside(&["b/u/7/"]),
                "{resource}"
            );
        }
    }

    #[test]
    fn an_unconditional_deny_wins_a_conditional_one_does_not() {
        let mut policy = json!({
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/secret/*"}
            ]
        });
        assert_eq!(verdict(&policy, "b", "public/x"), Verdict::Allowed);
        assert_eq!(verdict(&policy, "b", "secret/x"), outside(&["b/"]));
        policy["Statement"][1]["Condition"] = json!({"Bool": {"aws:SecureTransport": "false"}});
        assert_eq!(verdict(&policy, "b", "secret/x"), Verdict::Allowed);
    }

    #[test]
    fn no_write_action_means_nothing_may_be_written() {
        let policy = json!({
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]
        });
        assert_eq!(verdict(&policy, "b", "k"), outside(&[]));
    }

    #[test]
    fn policies_that_say_nothing_allow_and_the_store_decides() {
        for policy in [
            json!(null),
            json!({}),
            json!({"Statement": []}),
            json!("not json"),
        ] {
            assert_eq!(verdict(&policy, "b", "k"), Verdict::Allowed, "{policy}");
        }
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob("uploads/*/in/*", "uploads/7/in/a/b"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("uploads/7/*", "uploads/70"));
        assert!(glob("*", ""));
        assert!(glob("ü*", "über"));
        let long = "a".repeat(5000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long), "no blow-up");
    }
}
