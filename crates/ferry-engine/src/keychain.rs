//! Where secrets live: the OS keychain (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) or, when the user opts in because there is none, memory only. Never a
//! file or the journal.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// A place to keep secrets under `(service, name)`.
pub trait Keychain: Send + Sync {
    /// Stores or replaces a secret.
    fn set(&self, name: &str, value: &Secret) -> Result<()>;
    /// Reads a secret; `Ok(None)` when there is none.
    fn get(&self, name: &str) -> Result<Option<Secret>>;
    /// Deletes a secret; deleting a missing one is fine.
    fn delete(&self, name: &str) -> Result<()>;
    /// Whether secrets survive a restart.
    fn is_persistent(&self) -> bool;
}

/// Windows Credential Manager keeps at most 2560 bytes per entry, and `keyring` stores the
/// secret there as UTF-16: 1280 code units. Longer secrets (real STS tokens run to 2 KB and
/// more) are split into entries of at most this many units, cut between characters.
const MAX_UNITS: usize = 1280;

/// Single entries of a platform store, each with a size limit (see [`MAX_UNITS`]).
trait Entries: Send + Sync {
    fn set(&self, name: &str, value: &str) -> Result<()>;
    fn get(&self, name: &str) -> Result<Option<String>>;
    fn delete(&self, name: &str) -> Result<()>;
}

/// Splits `text` into pieces of at most `max` UTF-16 code units, never inside a character.
fn split_units(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut units) = (0, 0);
    for (at, c) in text.char_indices() {
        if units + c.len_utf16() > max {
            pieces.push(&text[start..at]);
            (start, units) = (at, 0);
        }
        units += c.len_utf16();
    }
    pieces.push(&text[start..]);
    pieces
}

/// A secret over several entries when it is too long for one: `name` then holds `chunks:<n>`
/// and `name#0…name#n-1` the pieces.
struct Chunked<E> {
    entries: E,
}

impl<E: Entries> Chunked<E> {
    fn chunk_count(head: &str) -> Option<usize> {
        head.strip_prefix("chunks:")?.parse().ok()
    }

    fn set(&self, name: &str, text: &str) -> Result<()> {
        self.delete(name)?;
        let pieces = split_units(text, MAX_UNITS);
        if pieces.len() == 1 && Self::chunk_count(text).is_none() {
            return self.entries.set(name, text);
        }
        for (i, piece) in pieces.iter().enumerate() {
            self.entries.set(&format!("{name}#{i}"), piece)?;
        }
        self.entries.set(name, &format!("chunks:{}", pieces.len()))
    }

    fn get(&self, name: &str) -> Result<Option<String>> {
        let Some(head) = self.entries.get(name)? else {
            return Ok(None);
        };
        let Some(count) = Self::chunk_count(&head) else {
            return Ok(Some(head));
        };
        let mut text = String::new();
        for i in 0..count {
            match self.entries.get(&format!("{name}#{i}"))? {
                Some(piece) => text.push_str(&piece),
                // Half written (a crash between pieces): as good as missing.
                None => return Ok(None),
            }
        }
        Ok(Some(text))
    }

    fn delete(&self, name: &str) -> Result<()> {
        if let Some(count) = self
            .entries
            .get(name)?
            .as_deref()
            .and_then(Self::chunk_count)
        {
            for i in 0..count {
                self.entries.delete(&format!("{name}#{i}"))?;
            }
        }
        self.entries.delete(name)
    }
}

/// Entries of the OS store through `keyring`.
struct KeyringEntries {
    service: String,
}

impl KeyringEntries {
    fn entry(&self, name: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, name).map_err(unavailable)
    }
}

impl Entries for KeyringEntries {
    fn set(&self, name: &str, value: &str) -> Result<()> {
        self.entry(name)?.set_password(value).map_err(unavailable)
    }

    fn get(&self, name: &str) -> Result<Option<String>> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
    }
}

/// The OS keychain through `keyring`, one service per build flavour (`ferry`, `ferry-dev`).
pub struct OsKeychain {
    store: Chunked<KeyringEntries>,
}

fn unavailable(err: keyring::Error) -> Error {
    Error::KeychainUnavailable(match err {
        keyring::Error::NoDefaultStore => {
            "no credential store (is a Secret Service running?)".into()
        }
        keyring::Error::NoStorageAccess(_) => "the keyring is locked or access was refused".into(),
        keyring::Error::PlatformFailure(e) => format!("platform failure: {e}"),
        other => other.to_string(),
    })
}

impl OsKeychain {
    /// Checks that a store is reachable and returns a keychain for `service`.
    pub fn open(service: &str) -> Result<Self> {
        if let Err(err) = keyring::Entry::store_status() {
            return Err(Error::KeychainUnavailable(err.to_string()));
        }
        let keychain = Self {
            store: Chunked {
                entries: KeyringEntries {
                    service: service.to_owned(),
                },
            },
        };
        // A locked keyring only shows itself on use.
        keychain.get("probe").map(|_| keychain)
    }
}

impl Keychain for OsKeychain {
    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        self.store.set(name, value.expose())
    }

    fn get(&self, name: &str) -> Result<Option<Secret>> {
        Ok(self.store.get(name)?.map(Secret::new))
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.store.delete(name)
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

/// Secrets in memory only: gone when the process ends. Only by explicit opt-in.
#[derive(Default)]
pub struct MemoryKeychain {
    entries: Mutex<HashMap<String, Secret>>,
}

impl Keychain for MemoryKeychain {
    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), value.clone());
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Option<Secret>> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned())
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_keychain_round_trips() {
        let k = MemoryKeychain::default();
        assert!(k.get("a").unwrap().is_none());
        k.set("a", &Secret::new("x")).unwrap();
        assert_eq!(k.get("a").unwrap().unwrap().expose(), "x");
        k.delete("a").unwrap();
        k.delete("a").unwrap();
        assert!(k.get("a").unwrap().is_none());
        assert!(!k.is_persistent());
    }

    /// Entries as Windows Credential Manager takes them: at most 1280 UTF-16 units each.
    #[derive(Default)]
    struct CredentialManagerLike {
        entries: Mutex<HashMap<String, String>>,
    }

    impl Entries for CredentialManagerLike {
        fn set(&self, name: &str, value: &str) -> Result<()> {
            let units = value.encode_utf16().count();
            if units > 1280 {
                return Err(Error::KeychainUnavailable(format!(
                    "{name}: {units} UTF-16 units is over the 2560-byte blob limit"
                )));
            }
            self.entries
                .lock()
                .unwrap()
                .insert(name.into(), value.into());
            Ok(())
        }

        fn get(&self, name: &str) -> Result<Option<String>> {
            Ok(self.entries.lock().unwrap().get(name).cloned())
        }

        fn delete(&self, name: &str) -> Result<()> {
            self.entries.lock().unwrap().remove(name);
            Ok(())
        }
    }

    #[test]
    fn long_secrets_are_split_to_fit_credential_manager() {
        let store = Chunked {
            entries: CredentialManagerLike::default(),
        };
        // A 4 KiB token (real STS tokens run 1-2 KB and more), then text whose characters take
        // two UTF-16 units each.
        let token: String = (0..4096).map(|i| (b'A' + (i % 26) as u8) as char).collect();
        let wide: String = "\u{1F600}".repeat(1500);
        for secret in [token.as_str(), wide.as_str(), "short", "chunks:7"] {
            store.set("grant:x", secret).unwrap();
            assert_eq!(store.get("grant:x").unwrap().as_deref(), Some(secret));
        }
        // Replacing a long secret by a short one leaves no stale pieces behind.
        store.set("grant:x", &token).unwrap();
        store.set("grant:x", "short").unwrap();
        assert_eq!(store.entries.entries.lock().unwrap().len(), 1);
        store.delete("grant:x").unwrap();
        assert!(store.entries.entries.lock().unwrap().is_empty());
        assert_eq!(store.get("grant:x").unwrap(), None);
    }

    #[test]
    fn pieces_never_split_a_character() {
        let text = "ab\u{1F600}c\u{1F600}\u{1F600}";
        let pieces = split_units(text, 3);
        assert_eq!(pieces.concat(), text);
        assert!(
            pieces.iter().all(|p| p.encode_utf16().count() <= 3),
            "{pieces:?}"
        );
    }
}
