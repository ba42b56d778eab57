//! What a verified grant may do, whatever the front: the upload operations only, on keys under
//! the grant's `bucket/prefix`, keys that are valid object keys, and the listing of open
//! uploads in the grant's bucket.

use super::core::StoreError;
use crate::grants::Principal;
use crate::object_key;

/// The operations a grant allows (S3's names; each front maps its requests onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    ListParts,
    ListMultipartUploads,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    HeadObject,
}

impl Operation {
    /// The operation of an S3 operation name, if a grant allows it.
    pub(crate) fn from_s3_name(name: &str) -> Option<Self> {
        Some(match name {
            "PutObject" => Self::PutObject,
            "CreateMultipartUpload" => Self::CreateMultipartUpload,
            "UploadPart" => Self::UploadPart,
            "ListParts" => Self::ListParts,
            "ListMultipartUploads" => Self::ListMultipartUploads,
            "CompleteMultipartUpload" => Self::CompleteMultipartUpload,
            "AbortMultipartUpload" => Self::AbortMultipartUpload,
            "HeadObject" => Self::HeadObject,
            _ => return None,
        })
    }
}

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Object { bucket: &'a str, key: &'a str },
    Bucket { bucket: &'a str },
}

/// Whether `who` may run `op` on `target`.
pub(crate) fn allow(who: &Principal, op: Operation, target: Target<'_>) -> Result<(), StoreError> {
    match (op, target) {
        (Operation::ListMultipartUploads, Target::Bucket { bucket }) => {
            if bucket != who.bucket {
                return Err(StoreError::AccessDenied(
                    "this grant is for another bucket".into(),
                ));
            }
            Ok(())
        }
        (Operation::ListMultipartUploads, Target::Object { .. }) | (_, Target::Bucket { .. }) => {
            Err(StoreError::AccessDenied(format!(
                "{op:?} is not allowed here by this grant"
            )))
        }
        (_, Target::Object { bucket, key }) => {
            if bucket != who.bucket || !key.starts_with(&who.prefix) {
                return Err(StoreError::AccessDenied(
                    "writes are allowed only under the grant's prefix".into(),
                ));
            }
            object_key::check(key).map_err(|why| {
                if key.len() > object_key::MAX_KEY_BYTES {
                    StoreError::KeyTooLong(why.to_string())
                } else {
                    StoreError::InvalidArgument(why.to_string())
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal {
            user_id: 1,
            bucket: "ferry".into(),
            prefix: "uploads/1/".into(),
        }
    }

    #[test]
    fn only_the_grant_prefix_and_bucket() {
        let object = |bucket, key| Target::Object { bucket, key };
        assert_eq!(
            allow(
                &alice(),
                Operation::PutObject,
                object("ferry", "uploads/1/a")
            ),
            Ok(())
        );
        for (bucket, key) in [("ferry", "uploads/2/a"), ("other", "uploads/1/a")] {
            assert!(matches!(
                allow(&alice(), Operation::UploadPart, object(bucket, key)),
                Err(StoreError::AccessDenied(_))
            ));
        }
        assert!(matches!(
            allow(
                &alice(),
                Operation::PutObject,
                object("ferry", "uploads/1/../2/a")
            ),
            Err(StoreError::InvalidArgument(_))
        ));
        let bucket = |bucket| Target::Bucket { bucket };
        assert_eq!(
            allow(&alice(), Operation::ListMultipartUploads, bucket("ferry")),
            Ok(())
        );
        assert!(allow(&alice(), Operation::ListMultipartUploads, bucket("other")).is_err());
        assert!(allow(&alice(), Operation::PutObject, bucket("ferry")).is_err());
    }
}
