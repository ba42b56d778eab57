//! Rules for object keys that the API and the store both enforce.

/// Longest key accepted, in bytes (S3's own limit).
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Why a key is refused, in words for the error message.
pub(crate) fn check(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("the key is longer than 1024 bytes");
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains control characters");
    }
    if key.starts_with('/') {
        return Err("the key starts with '/'");
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("the key has a '.' or '..' segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_keys() {
        for key in [
            "uploads/1/a.txt",
            "uploads/1/dir/na me+%#?~=.bin",
            "uploads/1/日本語/ü",
            "a..b",
        ] {
            assert_eq!(check(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn refuses_traversal_overlong_and_control_characters() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for key in [
            "",
            "uploads/1/../2/x",
            "uploads/./x",
            "..",
            "/abs",
            "a\nb",
            long.as_str(),
        ] {
            assert!(check(key).is_err(), "{key:?}");
        }
        assert!(check(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    }
}
