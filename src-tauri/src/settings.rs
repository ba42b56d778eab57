//! The desktop's upload settings: what the Settings screen shows, what it may be set to, and
//! `settings.json` in the data dir (never a secret), written whole or not at all. A file that
//! cannot be read as settings is moved aside, not silently overwritten.

use std::path::Path;

use ferry_engine::conflict::OnConflict;
use ferry_engine::network::{ManualProxy, Network, ProxyChoice};
use ferry_engine::secret::Secret;
use ferry_engine::transfer::TransferSettings;
use serde::{Deserialize, Serialize};

use crate::error::{CommandError, CommandResult};
use crate::words::{EN, Language, Words};

const FILE: &str = "settings.json";

/// The highest bandwidth limit, MiB/s (100 GiB/s: no link is faster).
const MAX_BANDWIDTH_MIBS: u64 = 100 * 1024;

/// Upload settings as the Settings screen shows them. A field missing from a saved file (one
/// written by another version) takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Settings {
    pub(crate) files: usize,
    pub(crate) parts_in_flight: usize,
    // "MiB" as the UI spells it; camelCase alone would give `partSizeMib`, which the Settings
    // screen never read (found by the contract scenario). Files saved that way still load.
    #[serde(rename = "partSizeMiB", alias = "partSizeMib")]
    pub(crate) part_size_mib: u64,
    #[serde(rename = "bandwidthMiBs", alias = "bandwidthMibs")]
    pub(crate) bandwidth_mibs: Option<u64>,
    pub(crate) start_at_login: bool,
    pub(crate) notifications: bool,
    /// What files added by hand do when their key already holds an object at the store
    /// (applied at once, also to the running engine).
    pub(crate) on_conflict: OnConflict,
    /// `system` (the environment's proxy), `direct` or `manual` (`proxy_url`).
    pub(crate) proxy_mode: ProxyMode,
    pub(crate) proxy_url: String,
    /// The manual proxy's user name; its password is in the keychain, never here.
    pub(crate) proxy_user: String,
    /// A PEM file of CA certificates to trust too.
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// The language of the window, the tray and notifications: `system`, `en` or `zh-CN`.
    pub(crate) language: Language,
}

/// Which proxy the settings choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) enum ProxyMode {
    #[default]
    System,
    Direct,
    Manual,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            files: 4,
            parts_in_flight: 16,
            part_size_mib: 8,
            bandwidth_mibs: None,
            start_at_login: false,
            notifications: true,
            on_conflict: OnConflict::Ask,
            proxy_mode: ProxyMode::System,
            proxy_url: String::new(),
            proxy_user: String::new(),
            ca_file: None,
            language: Language::System,
        }
    }
}

impl Settings {
    pub(crate) fn transfer(&self) -> TransferSettings {
        TransferSettings {
            // "Files at once" is what people see of big files; small ones go many at once.
            big_files: self.files.max(1),
            parts: self.parts_in_flight.max(1),
            per_file_parts: self.parts_in_flight.max(1),
            min_part_size: self.part_size_mib.max(5) * 1024 * 1024,
            bandwidth: self
                .bandwidth_mibs
                .map(|m| m.clamp(1, MAX_BANDWIDTH_MIBS) * 1024 * 1024),
            ..TransferSettings::default()
        }
    }

    /// Whether `other` describes the same network (proxy and CA file; the password is the
    /// keychain's, not the settings').
    pub(crate) fn same_network(&self, other: &Settings) -> bool {
        let network = |s: &Settings| {
            let (url, user) = (
                s.proxy_url.trim().to_owned(),
                s.proxy_user.trim().to_owned(),
            );
            (s.proxy_mode, url, user, s.ca_file.clone())
        };
        network(self) == network(other)
    }

    /// The network the settings describe, with the proxy's `password` (from the keychain).
    pub(crate) fn network(&self, password: Option<Secret>) -> Network {
        let user = Some(self.proxy_user.trim().to_owned()).filter(|u| !u.is_empty());
        Network {
            proxy: match self.proxy_mode {
                ProxyMode::System => ProxyChoice::System,
                ProxyMode::Direct => ProxyChoice::Direct,
                ProxyMode::Manual => ProxyChoice::Manual(ManualProxy {
                    url: self.proxy_url.trim().to_owned(),
                    password: user.as_ref().and(password),
                    user,
                }),
            },
            extra_ca: self.ca_file.clone().filter(|p| !p.as_os_str().is_empty()),
        }
    }

    /// Settings as the page sent them, or `invalid_settings` saying in `words` what is wrong:
    /// a field that is not a number or not one of its choices, or a value out of range.
    /// `before`: the settings saved now (a CA file already saved is not read again).
    pub(crate) fn from_page(
        value: serde_json::Value,
        before: &Settings,
        words: &Words,
    ) -> CommandResult<Self> {
        let settings: Self = serde_json::from_value(value).map_err(|err| {
            CommandError::worded(
                words,
                "invalid_settings",
                (words.settings_unreadable)(&err.to_string()),
            )
        })?;
        settings.check_all(before, words)?;
        Ok(settings)
    }

    fn check(&self, words: &Words) -> CommandResult<()> {
        let wrong = |message: &str| Err(CommandError::worded(words, "invalid_settings", message));
        if !(1..=16).contains(&self.files) {
            return wrong(words.files_range);
        }
        if !(1..=64).contains(&self.parts_in_flight) {
            return wrong(words.parts_range);
        }
        if !(5..=5 * 1024).contains(&self.part_size_mib) {
            return wrong(words.part_size_range);
        }
        if self
            .bandwidth_mibs
            .is_some_and(|m| !(1..=MAX_BANDWIDTH_MIBS).contains(&m))
        {
            return wrong(words.bandwidth_range);
        }
        Ok(())
    }

    /// [`Settings::check`], and the network settings usable: a manual proxy with an address,
    /// and a CA file that holds certificates — read when it is new (`before` had another): a
    /// file gone since does not stop the other settings from being saved.
    fn check_all(&self, before: &Settings, words: &Words) -> CommandResult<()> {
        self.check(words)?;
        if self.proxy_mode == ProxyMode::Manual && self.proxy_url.trim().is_empty() {
            return Err(CommandError::worded(
                words,
                "invalid_settings",
                words.proxy_address,
            ));
        }
        let mut network = self.network(None);
        if self.ca_file == before.ca_file {
            network.extra_ca = None;
        }
        network
            .check()
            .map_err(|err| CommandError::new("invalid_settings", err.to_string()))
    }
}

/// Takes the proxy's password (and the read-only `proxyPasswordSaved`) out of the page's
/// settings: it goes to the keychain, never into `settings.json`. An empty one is none.
pub(crate) fn take_proxy_password(page: &mut serde_json::Value) -> Option<Secret> {
    let page = page.as_object_mut()?;
    page.remove("proxyPasswordSaved");
    let password = page.remove("proxyPassword")?;
    Some(Secret::new(password.as_str()?)).filter(|p| !p.expose().is_empty())
}

/// The settings kept in `dir`; the defaults when there are none. A file that is not settings
/// (damaged, written by something else, or naming a choice this version does not know) is kept
/// as `settings.json.damaged` and the defaults are used — but for a language this version does
/// not speak, which is only taken as the system's.
pub(crate) fn load(dir: &Path) -> Settings {
    let path = dir.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Settings::default();
    };
    match serde_json::from_str::<Settings>(&without_unknown_language(&text)) {
        // Edited by hand out of range: the defaults, the file left as it is.
        Ok(settings) if settings.check(&EN).is_err() => {
            tracing::warn!("settings.json holds values out of range; using the defaults");
            Settings::default()
        }
        Ok(settings) => settings,
        Err(err) => {
            tracing::warn!(error = %err, "settings.json is damaged; using the defaults");
            let _ = std::fs::rename(&path, dir.join(format!("{FILE}.damaged")));
            Settings::default()
        }
    }
}

/// `text` with a language this version does not speak (one a later version saved) taken out:
/// it is then the system's, and the other settings are kept.
fn without_unknown_language(text: &str) -> String {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(text) else {
        return text.to_owned();
    };
    let known = fields
        .get("language")
        .is_none_or(|l| serde_json::from_value::<Language>(l.clone()).is_ok());
    if known {
        return text.to_owned();
    }
    fields.remove("language");
    serde_json::Value::Object(fields).to_string()
}

/// Keeps `settings` in `dir`: written to a file beside it, then renamed over it, so a crash
/// leaves the old settings or the new ones, never half of them.
pub(crate) fn save(dir: &Path, settings: &Settings) -> CommandResult<()> {
    let failed = |e: std::io::Error| CommandError::new("io", format!("saving the settings: {e}"));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let text = serde_json::to_vec_pretty(settings).unwrap_or_default();
    let next = dir.join(format!("{FILE}.next"));
    std::fs::write(&next, text).map_err(failed)?;
    std::fs::File::open(&next)
        .and_then(|f| f.sync_all())
        .map_err(failed)?;
    std::fs::rename(&next, dir.join(FILE)).map_err(failed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(changes: serde_json::Value) -> serde_json::Value {
        let mut value = serde_json::to_value(Settings::default()).unwrap();
        for (key, v) in changes.as_object().unwrap() {
            value[key] = v.clone();
        }
        value
    }

    #[test]
    fn settings_out_of_range_or_not_numbers_are_refused_with_a_reason() {
        for bad in [
            json!({"bandwidthMiBs": 0}),
            json!({"files": 0}),
            json!({"partsInFlight": 65}),
            json!({"partSizeMiB": 4}),
            json!({"files": "x"}),
            json!({"bandwidthMiBs": -1}),
            json!({"bandwidthMiBs": 20_000_000_000_000u64}),
        ] {
            let err =
                Settings::from_page(page(bad.clone()), &Settings::default(), &EN).unwrap_err();
            assert_eq!(err.code(), "invalid_settings", "{bad}");
        }
        let fine =
            Settings::from_page(page(json!({"bandwidthMiBs": 3})), &Settings::default(), &EN)
                .unwrap();
        assert_eq!(fine.transfer().bandwidth, Some(3 << 20));
        assert_eq!(
            Settings::from_page(
                page(json!({"bandwidthMiBs": null})),
                &Settings::default(),
                &EN
            )
            .unwrap()
            .bandwidth_mibs,
            None
        );
    }

    #[test]
    fn network_settings_are_refused_with_a_reason_unless_usable() {
        let dir = tempfile::tempdir().unwrap();
        let no_certs = dir.path().join("no-certs.pem");
        std::fs::write(&no_certs, "not a certificate").unwrap();
        for (bad, says) in [
            (
                json!({"proxyMode": "manual", "proxyUrl": " "}),
                "proxy's address",
            ),
            (
                json!({"proxyMode": "manual", "proxyUrl": "ftp://p:21"}),
                "ftp://p:21",
            ),
            (json!({"caFile": no_certs}), "no-certs.pem"),
            (json!({"caFile": dir.path().join("gone.pem")}), "gone.pem"),
            (json!({"proxyMode": "sometimes"}), "could not be read"),
        ] {
            let err =
                Settings::from_page(page(bad.clone()), &Settings::default(), &EN).unwrap_err();
            assert_eq!(err.code(), "invalid_settings", "{bad}");
            assert!(err.message().contains(says), "{bad}: {err:?}");
        }
        let manual = Settings::from_page(
            page(json!({
                "proxyMode": "manual", "proxyUrl": "socks5h://proxy:1080", "proxyUser": "me"
            })),
            &Settings::default(),
            &EN,
        )
        .unwrap();
        let network = manual.network(Some(Secret::new("pw")));
        assert!(
            matches!(network.proxy, ProxyChoice::Manual(ref m) if m.user.as_deref() == Some("me"))
        );
        // Saved, a CA file that went away later does not cost the other settings.
        let ca = Settings {
            files: 3,
            ca_file: Some(dir.path().join("gone.pem")),
            ..Settings::default()
        };
        save(dir.path(), &ca).unwrap();
        assert_eq!(load(dir.path()), ca);
        let page_again = serde_json::to_value(Settings {
            files: 5,
            ..ca.clone()
        })
        .unwrap();
        assert_eq!(Settings::from_page(page_again, &ca, &EN).unwrap().files, 5);
    }

    #[test]
    fn saved_settings_load_back_and_a_damaged_file_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Settings::default(), "none saved yet");
        let mine = Settings {
            files: 2,
            bandwidth_mibs: Some(5),
            ..Settings::default()
        };
        save(dir.path(), &mine).unwrap();
        assert_eq!(load(dir.path()), mine);
        assert!(!dir.path().join("settings.json.next").exists());

        // Written by another version: what it lacks takes the default.
        std::fs::write(dir.path().join(FILE), b"{\"files\": 2}").unwrap();
        assert_eq!(
            load(dir.path()),
            Settings {
                files: 2,
                ..Settings::default()
            }
        );
        // Out of range (edited by hand): the defaults, the file untouched.
        std::fs::write(dir.path().join(FILE), b"{\"partsInFlight\": 1000}").unwrap();
        assert_eq!(load(dir.path()), Settings::default());
        assert!(dir.path().join(FILE).exists());

        std::fs::write(dir.path().join(FILE), b"{\"files\": 2, \"partsIn").unwrap();
        assert_eq!(load(dir.path()), Settings::default());
        assert_eq!(
            std::fs::read(dir.path().join("settings.json.damaged")).unwrap(),
            b"{\"files\": 2, \"partsIn"
        );
    }

    #[test]
    fn the_language_is_one_of_three_and_an_old_file_has_the_systems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{\"files\": 2}").unwrap();
        assert_eq!(load(dir.path()).language, Language::System);

        let chinese = Settings::from_page(
            page(json!({"language": "zh-CN"})),
            &Settings::default(),
            &EN,
        )
        .unwrap();
        assert_eq!(chinese.language, Language::ZhCn);
        assert_eq!(serde_json::to_value(&chinese).unwrap()["language"], "zh-CN");
        save(dir.path(), &chinese).unwrap();
        assert_eq!(load(dir.path()), chinese);
        assert_eq!(
            serde_json::to_value(Settings::default()).unwrap()["language"],
            "system"
        );

        for bad in ["fr", "zh", "EN"] {
            let err =
                Settings::from_page(page(json!({"language": bad})), &Settings::default(), &EN)
                    .unwrap_err();
            assert_eq!(err.code(), "invalid_settings", "{bad}");
        }
        // A language this version does not speak (a later one saved it): the system's, and
        // the other settings kept, the file left as it is.
        std::fs::write(
            dir.path().join(FILE),
            b"{\"files\": 2, \"language\": \"fr\"}",
        )
        .unwrap();
        let kept = load(dir.path());
        assert_eq!((kept.files, kept.language), (2, Language::System));
        assert!(!dir.path().join("settings.json.damaged").exists());
    }

    #[test]
    fn a_refusal_is_worded_in_the_language_asked_for() {
        let zh = crate::words::Lang::ZhCn.words();
        let err =
            Settings::from_page(page(json!({"files": 0})), &Settings::default(), zh).unwrap_err();
        assert_eq!(err.code(), "invalid_settings");
        assert_eq!(err.message(), "同时上传的文件数必须在 1 到 16 之间。");
    }

    #[test]
    fn only_the_proxy_and_the_ca_file_make_another_network() {
        let before = Settings::default();
        let other_language = Settings {
            language: Language::ZhCn,
            bandwidth_mibs: Some(5),
            ..before.clone()
        };
        assert!(other_language.same_network(&before));
        let spaced = Settings {
            proxy_url: " ".into(),
            ..before.clone()
        };
        assert!(spaced.same_network(&before), "an address of spaces is none");
        let manual = Settings {
            proxy_mode: ProxyMode::Manual,
            proxy_url: "http://p:3128".into(),
            ..before.clone()
        };
        assert!(!manual.same_network(&before));
        let ca = Settings {
            ca_file: Some("/etc/ca.pem".into()),
            ..before.clone()
        };
        assert!(!ca.same_network(&before));
    }
}
