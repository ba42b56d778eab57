//! The `s3` dialect: AWS Signature Version 4 (from [`ferry_sign::sigv4`]) and the S3 XML the
//! engine reads.

pub mod xml;

pub use ferry_sign::sigv4::*;
