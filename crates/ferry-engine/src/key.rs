//! How a local path becomes an object key below the grant's prefix: `/`-separated, Unicode NFC,
//! at most 1024 bytes. One rule for files added by hand and files found in watched folders.

use std::path::Path;

use unicode_normalization::UnicodeNormalization;

/// Longest key accepted, in bytes (S3's limit).
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Why a path cannot be a key: a stable code and a sentence.
pub(crate) type Refusal = (&'static str, &'static str);

/// The key for `relative` under `prefix` (which is `""` or ends with `/`): the path's parts
/// joined with `/` — whatever the platform's separator, and a `\` inside a Unix file name stays
/// in the key as it is.
pub(crate) fn object_key(prefix: &str, relative: &Path) -> Result<String, Refusal> {
    let mut parts = Vec::new();
    for part in relative.components() {
        match part.as_os_str().to_str() {
            Some(text) => parts.push(text),
            None => {
                return Err((
                    "name_not_utf8",
                    "the file name is not valid UTF-8, so it cannot be an object key",
                ));
            }
        }
    }
    let key = format!("{prefix}{}", parts.join("/").nfc().collect::<String>());
    if key.len() > MAX_KEY_BYTES {
        return Err((
            "path_too_long",
            "the path is longer than an object key may be (1024 bytes)",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_nfc_slash_separated_and_bounded() {
        // "é" as e + combining acute becomes the single code point.
        let decomposed = Path::new("dir/cafe\u{301}.txt");
        assert_eq!(
            object_key("inbox/", decomposed).unwrap(),
            "inbox/dir/caf\u{e9}.txt"
        );
        #[cfg(unix)]
        assert_eq!(
            object_key("", Path::new("dir/back\\slash.txt")).unwrap(),
            "dir/back\\slash.txt",
            "a backslash is part of a Unix file name"
        );
        let long = "d/".repeat(600);
        assert_eq!(
            object_key("", Path::new(&long)).unwrap_err().0,
            "path_too_long"
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bad = Path::new(std::ffi::OsStr::from_bytes(b"x\xff"));
            assert_eq!(object_key("", bad).unwrap_err().0, "name_not_utf8");
        }
    }
}
