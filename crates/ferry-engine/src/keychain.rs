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

/// The OS keychain through `keyring`, one service per build flavour (`ferry`, `ferry-dev`).
pub struct OsKeychain {
    service: String,
}

/// Windows Credential Manager holds at most 2560 bytes per entry: longer secrets are split.
const CHUNK: usize = 2000;

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
            service: service.to_owned(),
        };
        // A locked keyring only shows itself on use.
        keychain.get("probe").map(|_| keychain)
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, name).map_err(unavailable)
    }
}

impl Keychain for OsKeychain {
    fn set(&self, name: &str, value: &Secret) -> Result<()> {
        let text = value.expose();
        let chunks: Vec<&str> = text
            .as_bytes()
            .chunks(CHUNK)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        // Chunks are cut on byte boundaries of ASCII text (JSON and tokens); refuse anything
        // else rather than store it mangled.
        if chunks.concat() != text {
            return Err(Error::KeychainUnavailable("secret is not ASCII".into()));
        }
        self.delete(name)?;
        if chunks.len() <= 1 {
            return self.entry(name)?.set_password(text).map_err(unavailable);
        }
        for (i, chunk) in chunks.iter().enumerate() {
            self.entry(&format!("{name}#{i}"))?
                .set_password(chunk)
                .map_err(unavailable)?;
        }
        self.entry(name)?
            .set_password(&format!("chunks:{}", chunks.len()))
            .map_err(unavailable)
    }

    fn get(&self, name: &str) -> Result<Option<Secret>> {
        let head = match self.entry(name)?.get_password() {
            Ok(value) => value,
            Err(keyring::Error::NoEntry) => return Ok(None),
            Err(err) => return Err(unavailable(err)),
        };
        let Some(count) = head
            .strip_prefix("chunks:")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Ok(Some(Secret::new(head)));
        };
        let mut text = String::new();
        for i in 0..count {
            match self.entry(&format!("{name}#{i}"))?.get_password() {
                Ok(chunk) => text.push_str(&chunk),
                Err(keyring::Error::NoEntry) => return Ok(None),
                Err(err) => return Err(unavailable(err)),
            }
        }
        Ok(Some(Secret::new(text)))
    }

    fn delete(&self, name: &str) -> Result<()> {
        let head = match self.entry(name)?.get_password() {
            Ok(value) => value,
            Err(keyring::Error::NoEntry) => return Ok(()),
            Err(err) => return Err(unavailable(err)),
        };
        if let Some(count) = head
            .strip_prefix("chunks:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            for i in 0..count {
                match self.entry(&format!("{name}#{i}"))?.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => {}
                    Err(err) => return Err(unavailable(err)),
                }
            }
        }
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
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
}
