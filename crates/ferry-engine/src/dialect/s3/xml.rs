//! The S3 XML the engine reads: error bodies, `InitiateMultipartUploadResult`,
//! `ListPartsResult`, `CompleteMultipartUploadResult`.

use crate::storage::{xml_value, xml_values};

/// An S3 error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// `Code`, e.g. `NoSuchUpload`.
    pub code: String,
    /// `Message`.
    pub message: String,
}

/// One part of a `ListPartsResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// Part number.
    pub number: u32,
    /// Bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
}

/// One page of `ListPartsResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartsPage {
    /// Parts on this page.
    pub parts: Vec<ListedPart>,
    /// The marker of the next page, when the list is truncated.
    pub next_marker: Option<u32>,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable XML: {0}")]
pub struct XmlError(String);

/// An error body, if `body` is one.
pub fn error(body: &[u8]) -> Option<ErrorBody> {
    let text = String::from_utf8_lossy(body);
    Some(ErrorBody {
        code: xml_value(&text, "Code")?,
        message: xml_value(&text, "Message").unwrap_or_default(),
    })
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
pub fn upload_id(body: &[u8]) -> Result<String, XmlError> {
    xml_value(&String::from_utf8_lossy(body), "UploadId")
        .ok_or_else(|| XmlError("no UploadId".into()))
}

/// The ETag (without quotes) of a `CompleteMultipartUploadResult`.
pub fn completed_etag(body: &[u8]) -> Result<String, XmlError> {
    xml_value(&String::from_utf8_lossy(body), "ETag")
        .map(|e| e.trim_matches('"').to_owned())
        .ok_or_else(|| XmlError("no ETag".into()))
}

/// A page of `ListPartsResult`.
pub fn parts_page(body: &[u8]) -> Result<PartsPage, XmlError> {
    let text = String::from_utf8_lossy(body);
    let mut parts = Vec::new();
    for part in xml_values(&text, "Part") {
        let number = xml_value(&part, "PartNumber").and_then(|n| n.parse().ok());
        let size = xml_value(&part, "Size").and_then(|n| n.parse().ok());
        let etag = xml_value(&part, "ETag").map(|e| e.trim_matches('"').to_owned());
        if let (Some(number), Some(size), Some(etag)) = (number, size, etag) {
            parts.push(ListedPart { number, size, etag });
        }
    }
    let truncated = xml_value(&text, "IsTruncated").as_deref() == Some("true");
    let next_marker = xml_value(&text, "NextPartNumberMarker")
        .and_then(|n| n.parse().ok())
        .filter(|_| truncated);
    Ok(PartsPage { parts, next_marker })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As AWS writes it: quotes as `&quot;`.
    const PARTS_AWS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>ferry</Bucket>
  <Key>uploads/1/a &amp; b.bin</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
  <PartNumberMarker>0</PartNumberMarker>
  <NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>1</PartNumber>
    <LastModified>2026-11-26T10:00:00.000Z</LastModified>
    <ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag>
    <Size>8388608</Size>
  </Part>
  <Part>
    <PartNumber>2</PartNumber>
    <LastModified>2026-11-26T10:00:01.000Z</LastModified>
    <ETag>"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"</ETag>
    <Size>8388608</Size>
  </Part>
</ListPartsResult>"#;

    /// As stores written in Go write it (MinIO, for one): Go's `encoding/xml` escapes a quote as
    /// `&#34;`, and everything is on one line.
    const PARTS_GO: &str = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>ferry</Bucket>"#,
        r#"<Key>uploads/1/a.bin</Key><UploadId>b1c2</UploadId><Initiator><ID>minio</ID>"#,
        r#"<DisplayName>minio</DisplayName></Initiator><StorageClass>STANDARD</StorageClass>"#,
        r#"<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>1</NextPartNumberMarker>"#,
        r#"<MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber>"#,
        r#"<LastModified>2026-11-26T10:00:00Z</LastModified>"#,
        r#"<ETag>&#34;7778aef83f66abc1fa1e8477f296d394&#34;</ETag><Size>5242880</Size></Part>"#,
        r#"</ListPartsResult>"#
    );

    #[test]
    fn list_parts_in_both_quote_forms() {
        let aws = parts_page(PARTS_AWS.as_bytes()).unwrap();
        assert_eq!(aws.next_marker, Some(2));
        assert_eq!(
            aws.parts,
            [
                ListedPart {
                    number: 1,
                    size: 8_388_608,
                    etag: "7778aef83f66abc1fa1e8477f296d394".into()
                },
                ListedPart {
                    number: 2,
                    size: 8_388_608,
                    etag: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()
                }
            ]
        );
        let go = parts_page(PARTS_GO.as_bytes()).unwrap();
        assert_eq!(go.next_marker, None, "not truncated");
        assert_eq!(
            go.parts,
            [ListedPart {
                number: 1,
                size: 5_242_880,
                etag: "7778aef83f66abc1fa1e8477f296d394".into()
            }]
        );
    }

    #[test]
    fn complete_results_and_errors_in_both_quote_forms() {
        let aws = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Location>http://ferry.s3.amazonaws.com/a</Location><Bucket>ferry</Bucket><Key>a</Key>
<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag></CompleteMultipartUploadResult>"#;
        let go = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
            r#"<Location>http://127.0.0.1:9000/ferry/a</Location><Bucket>ferry</Bucket>"#,
            r#"<Key>a</Key><ETag>&#34;3858f62230ac3c915f300c664312c11f-9&#34;</ETag>"#,
            r#"</CompleteMultipartUploadResult>"#
        );
        for body in [aws, go] {
            assert_eq!(
                completed_etag(body.as_bytes()).unwrap(),
                "3858f62230ac3c915f300c664312c11f-9"
            );
            assert_eq!(error(body.as_bytes()), None, "a result is not an error");
        }
        let late = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InternalError</Code><Message>We encountered an internal error &#38; &lt;more&gt;.</Message>
<RequestId>656c76696e6727732072657175657374</RequestId></Error>"#;
        assert_eq!(
            error(late.as_bytes()).unwrap(),
            ErrorBody {
                code: "InternalError".into(),
                message: "We encountered an internal error & <more>.".into()
            }
        );
        assert!(completed_etag(late.as_bytes()).is_err());
        let init = r#"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>a&#43;b&amp;c</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(upload_id(init.as_bytes()).unwrap(), "a+b&c");
    }

    #[test]
    fn malformed_bodies_are_errors_not_guesses() {
        assert!(parts_page(b"<ListPartsResult><Part><PartNumber>1</Part>").is_err());
        assert!(parts_page(b"not xml at all").is_err());
        assert!(upload_id(b"<Other/>").is_err());
        assert_eq!(error(b"<html>502 Bad Gateway</html>"), None);
    }
}
