//! JSON as Python's `json.dumps` writes it by default (`", "` and `": "` between items, every
//! character outside printable ASCII as `\uXXXX`): the Huawei and JD Cloud SDKs send their
//! bodies so, and since the signature covers the body's hash, Ferry sends the same bytes for the
//! same call. ASCII-only bodies also travel safely through any proxy.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// Serialises `value` the way Python's `json.dumps(value)` does.
pub(crate) fn to_string<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut serializer)
        .expect("serialising to memory does not fail");
    String::from_utf8(out).expect("the formatter writes ASCII only")
}

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(writer, "\\u{byte:04x}"),
        };
        writer.write_all(text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn writes_like_python_json_dumps() {
        // `json.dumps({"a": [1, "ü😀"], "b": "\"\\\n\x01\x7f/"})` in Python 3.
        let value = json!({"a": [1, "ü😀"], "b": "\"\\\n\u{1}\u{7f}/"});
        assert_eq!(
            super::to_string(&value),
            r#"{"a": [1, "\u00fc\ud83d\ude00"], "b": "\"\\\n\u0001\u007f/"}"#
        );
        assert_eq!(super::to_string(&json!({})), "{}");
        assert_eq!(
            super::to_string(&json!([[], {"k": null}])),
            r#"[[], {"k": null}]"#
        );
    }
}
