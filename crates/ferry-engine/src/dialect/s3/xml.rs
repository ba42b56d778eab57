//! The S3 XML the engine reads: error bodies, `InitiateMultipartUploadResult`,
//! `ListPartsResult`, `CompleteMultipartUploadResult`.

use serde::{Deserialize, Serialize};

/// An S3 error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// `Code`, e.g. `NoSuchUpload`.
    pub code: String,
    /// `Message`.
    pub message: String,
    /// `RequestId`: what the store's support asks for.
    pub request_id: Option<String>,
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

/// The name of the root element, if the body is XML.
fn root(body: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buffer = Vec::new();
    for _ in 0..64 {
        match reader.read_event_into(&mut buffer).ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                return Some(e.local_name().into_inner().to_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => buffer.clear(),
        }
    }
    None
}

/// Deserializes `body` if its root element is `name`.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], name: &str) -> Result<T, XmlError> {
    match root(body) {
        Some(found) if found == name => {}
        Some(found) => return Err(XmlError(format!("expected <{name}>, got <{found}>"))),
        None => return Err(XmlError(format!("expected <{name}>, got no XML"))),
    }
    let text = std::str::from_utf8(body).map_err(|e| XmlError(e.to_string()))?;
    quick_xml::de::from_str(text).map_err(|e| XmlError(format!("<{name}>: {e}")))
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorXml {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
}

/// An error body, if `body` is one.
pub fn error(body: &[u8]) -> Option<ErrorBody> {
    let parsed: ErrorXml = parse(body, "Error").ok()?;
    Some(ErrorBody {
        code: parsed.code,
        message: parsed.message,
        request_id: Some(parsed.request_id).filter(|id| !id.is_empty()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateXml {
    upload_id: String,
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
pub fn upload_id(body: &[u8]) -> Result<String, XmlError> {
    let parsed: InitiateXml = parse(body, "InitiateMultipartUploadResult")?;
    if parsed.upload_id.is_empty() {
        return Err(XmlError("empty UploadId".into()));
    }
    Ok(parsed.upload_id)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteXml {
    #[serde(rename = "ETag")]
    etag: String,
}

/// The ETag (without quotes) of a `CompleteMultipartUploadResult`.
pub fn completed_etag(body: &[u8]) -> Result<String, XmlError> {
    let parsed: CompleteXml = parse(body, "CompleteMultipartUploadResult")?;
    Ok(unquote(&parsed.etag))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartXml {
    part_number: u32,
    size: u64,
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsXml {
    #[serde(default)]
    is_truncated: bool,
    next_part_number_marker: Option<u32>,
    #[serde(default, rename = "Part")]
    parts: Vec<PartXml>,
}

/// A page of `ListPartsResult`.
pub fn parts_page(body: &[u8]) -> Result<PartsPage, XmlError> {
    let parsed: ListPartsXml = parse(body, "ListPartsResult")?;
    Ok(PartsPage {
        parts: parsed
            .parts
            .into_iter()
            .map(|p| ListedPart {
                number: p.part_number,
                size: p.size,
                etag: unquote(&p.etag),
            })
            .collect(),
        next_marker: parsed
            .next_part_number_marker
            .filter(|_| parsed.is_truncated),
    })
}

/// One open multipart upload of a `ListMultipartUploadsResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was begun, as the store writes it (RFC 3339).
    pub initiated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadXml {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploadsXml {
    #[serde(default, rename = "Upload")]
    uploads: Vec<UploadXml>,
}

/// The uploads of a `ListMultipartUploadsResult` (one page).
pub fn open_uploads(body: &[u8]) -> Result<Vec<OpenUpload>, XmlError> {
    let parsed: ListUploadsXml = parse(body, "ListMultipartUploadsResult")?;
    Ok(parsed
        .uploads
        .into_iter()
        .map(|u| OpenUpload {
            key: u.key,
            upload_id: u.upload_id,
            initiated: u.initiated,
        })
        .collect())
}

#[derive(Serialize)]
#[serde(rename = "CompleteMultipartUpload")]
struct CompleteRequestXml {
    #[serde(rename = "Part")]
    parts: Vec<CompletePartXml>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CompletePartXml {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// The body of CompleteMultipartUpload for `(part number, ETag)` pairs.
pub fn complete_request(parts: &[(u32, String)]) -> String {
    let request = CompleteRequestXml {
        parts: parts
            .iter()
            .map(|(number, etag)| CompletePartXml {
                part_number: *number,
                etag: format!("\"{etag}\""),
            })
            .collect(),
    };
    // Serialising plain strings and numbers cannot fail.
    quick_xml::se::to_string(&request).unwrap_or_default()
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
                message: "We encountered an internal error & <more>.".into(),
                request_id: Some("656c76696e6727732072657175657374".into()),
            }
        );
        assert!(completed_etag(late.as_bytes()).is_err());
        let init = r#"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>a&#43;b&amp;c</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(upload_id(init.as_bytes()).unwrap(), "a+b&c");
    }

    #[test]
    fn open_uploads_are_listed() {
        let body = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult>"#,
            r#"<Bucket>ferry</Bucket><Upload><Key>u/1/a.bin</Key><UploadId>x&amp;1</UploadId>"#,
            r#"<Initiated>2026-11-26T10:00:00.000Z</Initiated></Upload><Upload>"#,
            r#"<Key>u/1/b.bin</Key><UploadId>y</UploadId></Upload></ListMultipartUploadsResult>"#
        );
        let uploads = open_uploads(body.as_bytes()).unwrap();
        assert_eq!(uploads.len(), 2);
        assert_eq!(uploads[0].upload_id, "x&1");
        assert_eq!(
            uploads[0].initiated.as_deref(),
            Some("2026-11-26T10:00:00.000Z")
        );
        assert_eq!(uploads[1].initiated, None);
        let none = r#"<ListMultipartUploadsResult><Bucket>b</Bucket></ListMultipartUploadsResult>"#;
        assert!(open_uploads(none.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn the_complete_request_reads_back() {
        let body = complete_request(&[(1, "a".into()), (2, "b&c".into())]);
        assert_eq!(
            body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag>\
             </Part><Part><PartNumber>2</PartNumber><ETag>\"b&amp;c\"</ETag></Part>\
             </CompleteMultipartUpload>"
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_guesses() {
        assert!(parts_page(b"<ListPartsResult><Part><PartNumber>1</Part>").is_err());
        assert!(parts_page(b"not xml at all").is_err());
        assert!(upload_id(b"<Other/>").is_err());
        assert_eq!(error(b"<html>502 Bad Gateway</html>"), None);
    }
}
