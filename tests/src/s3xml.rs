//! The store's XML replies read with a real XML parser (quick-xml + serde), not by string
//! search: entities in every form (`&quot;`, `&#34;`, `&#x22;`) come out as the characters they
//! stand for, whatever the product's own parsing does.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Parses `xml` as `T`, panicking with the body when it is not.
pub fn parse<T: DeserializeOwned>(xml: &str) -> T {
    quick_xml::de::from_str(xml).unwrap_or_else(|e| panic!("unexpected XML ({e}): {xml}"))
}

/// `<Error>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorReply {
    /// S3 error code.
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// The `Code` of an S3 error body, or `""` when the body is not one.
pub fn error_code(xml: &str) -> String {
    quick_xml::de::from_str::<ErrorReply>(xml)
        .map(|e| e.code)
        .unwrap_or_default()
}

/// `<InitiateMultipartUploadResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Initiated {
    /// The new upload id.
    pub upload_id: String,
}

/// `<CompleteMultipartUploadResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Completed {
    /// The object's ETag, quotes included as sent.
    pub e_tag: String,
    /// The object key.
    pub key: String,
}

/// One `<Part>` of `<ListPartsResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedPart {
    /// Part number.
    pub part_number: u32,
    /// ETag, quotes included as sent.
    pub e_tag: String,
    /// Size in bytes.
    pub size: u64,
}

/// `<ListPartsResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartList {
    /// More parts after these.
    pub is_truncated: bool,
    /// Where the next page starts.
    #[serde(default)]
    pub next_part_number_marker: Option<u32>,
    /// The parts, in the order listed.
    #[serde(rename = "Part", default)]
    pub parts: Vec<ListedPart>,
}

impl PartList {
    /// The part numbers, in the order listed.
    pub fn numbers(&self) -> Vec<u32> {
        self.parts.iter().map(|p| p.part_number).collect()
    }
}

/// One `<Upload>` of `<ListMultipartUploadsResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedUpload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
}

/// `<ListMultipartUploadsResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadList {
    /// More uploads after these.
    pub is_truncated: bool,
    /// Key marker of the next page.
    #[serde(default)]
    pub next_key_marker: Option<String>,
    /// Upload-id marker of the next page.
    #[serde(default)]
    pub next_upload_id_marker: Option<String>,
    /// The uploads, in the order listed.
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<ListedUpload>,
}

impl UploadList {
    /// The keys, in the order listed.
    pub fn keys(&self) -> Vec<String> {
        self.uploads.iter().map(|u| u.key.clone()).collect()
    }
}

/// The text of every element named `tag`, in document order, entities resolved.
pub fn texts(xml: &str, tag: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    // The raw text (entities kept as `&name;`) of the element being read, if it is a `tag`.
    let mut current: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == tag.as_bytes() => {
                current = Some(String::new());
            }
            Ok(Event::Text(t)) => {
                if let Some(text) = current.as_mut() {
                    text.push_str(&t.decode().unwrap_or_else(|e| panic!("{e}: {xml}")));
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(text) = current.as_mut() {
                    let name = r.decode().unwrap_or_else(|e| panic!("{e}: {xml}"));
                    text.push_str(&format!("&{name};"));
                }
            }
            Ok(Event::End(e)) if e.name().as_ref() == tag.as_bytes() => {
                if let Some(raw) = current.take() {
                    let text =
                        quick_xml::escape::unescape(&raw).unwrap_or_else(|e| panic!("{e}: {xml}"));
                    out.push(text.into_owned());
                }
            }
            Ok(Event::Eof) => return out,
            Ok(_) => {}
            Err(e) => panic!("malformed XML ({e}): {xml}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_in_every_form_are_resolved() {
        for xml in [
            "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber>\
             <ETag>&quot;abc&quot;</ETag><Size>5</Size></Part></ListPartsResult>",
            "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber>\
             <ETag>&#34;abc&#x22;</ETag><Size>5</Size></Part></ListPartsResult>",
        ] {
            let list: PartList = parse(xml);
            assert_eq!(list.parts[0].e_tag, "\"abc\"");
            assert_eq!(texts(xml, "ETag"), ["\"abc\""]);
        }
        assert_eq!(
            error_code("<Error><Code>NoSuchUpload</Code></Error>"),
            "NoSuchUpload"
        );
        assert_eq!(error_code("not xml"), "");
    }
}
