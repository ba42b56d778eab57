//! Where a front end keeps things, decided once for the CLI and the desktop alike: the data
//! dir, the remembered app server, this device's name, the keychain service — and which app
//! server addresses are acceptable at all.
//!
//! An app server is reached over `https://`, or `http://` to this computer (loopback). Plain
//! `http://` to another host would carry the password, the session and the storage credentials
//! in clear, so it is refused unless the user explicitly allowed it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::token_server::TokenServer;

/// The server tried when none was given or remembered: `cargo xtask run`'s.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8480";

/// `ferry` for release builds, `ferry-dev` for debug builds: their data and secrets never mix.
pub fn flavour() -> &'static str {
    if cfg!(debug_assertions) {
        "ferry-dev"
    } else {
        "ferry"
    }
}

/// The keychain service secrets are kept under.
pub fn keychain_service() -> &'static str {
    flavour()
}

/// The data dir: `FERRY_DATA_DIR`, else the platform's data dir (`$XDG_DATA_HOME` or
/// `~/.local/share` on Linux, found from the user's account when `HOME` is unset; the roaming
/// app data on Windows; Application Support on macOS) plus the flavour — unless an earlier
/// version's data dir (`$XDG_DATA_HOME` or `~/.local/share` everywhere) is there: it stays in use.
pub fn data_dir() -> PathBuf {
    let earlier = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    data_dir_from(
        std::env::var_os("FERRY_DATA_DIR"),
        dirs::data_dir(),
        earlier,
    )
}

/// [`data_dir`] from what the environment and the platform say. Never a relative path: an app
/// started by the system (autostart) has a working directory nobody chose.
fn data_dir_from(
    chosen: Option<std::ffi::OsString>,
    platform: Option<PathBuf>,
    earlier: Option<PathBuf>,
) -> PathBuf {
    if let Some(dir) = chosen {
        return dir.into();
    }
    if let Some(kept) = earlier
        .map(|base| base.join(flavour()))
        .filter(|d| d.is_dir())
    {
        return kept;
    }
    platform
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-data"))
        .join(flavour())
}

/// The app server signed in to last from `data_dir`, if any.
pub fn remembered_server(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("server"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Remembers `server` (already [`checked_server`]) for the next start.
pub fn remember_server(data_dir: &Path, server: &str) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(data_dir.join("server"), server))
        .map_err(Error::io("remembering the server"))
}

/// This device's name in history: the computer's name as the OS has it (not `HOSTNAME`,
/// which apps started from a desktop do not get), else `ferry`.
pub fn device_name() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ferry".into())
}

/// `server` as the engine uses it (no trailing `/`), or why it is refused: not an address
/// ([`Error::InvalidServer`]), or plain `http://` to another computer without `allow_insecure`
/// ([`Error::InsecureServer`]).
pub fn checked_server(server: &str, allow_insecure: bool) -> Result<String> {
    let invalid =
        |why: &str| Error::InvalidServer(format!("{why}: give it as https://host[:port]"));
    let url = reqwest::Url::parse(server.trim()).map_err(|_| invalid("not a server address"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the address must not hold a name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the address must not have a query or fragment"));
    }
    check_transport(&url, allow_insecure)?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Refuses an address credentials must not travel to: plain `http://` to another computer
/// (unless allowed), or anything but http(s).
pub(crate) fn check_transport(url: &reqwest::Url, allow_insecure: bool) -> Result<()> {
    let invalid =
        |why: &str| Error::InvalidServer(format!("{why}: give it as https://host[:port]"));
    let Some(host) = url.host_str() else {
        return Err(invalid("the address has no host"));
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) || allow_insecure => {}
        "http" => return Err(Error::InsecureServer(host.to_owned())),
        _ => {
            return Err(invalid(
                "only https:// (or http:// to this computer) is allowed",
            ));
        }
    }
    Ok(())
}

/// A connection profile whose token URL and store endpoint pass the same rule as servers (its
/// token URL may carry a query: tutorials' endpoints often do).
pub fn checked_token_server(server: TokenServer, allow_insecure: bool) -> Result<TokenServer> {
    let urls = std::iter::once(&server.token_url).chain(server.storage.endpoint.as_ref());
    for address in urls {
        let url = reqwest::Url::parse(address.trim()).map_err(|_| {
            Error::InvalidServer(format!(
                "{address:?} in the connection profile is not a URL"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidServer(
                "the connection profile's addresses must not hold a name or password".into(),
            ));
        }
        check_transport(&url, allow_insecure)?;
    }
    Ok(server)
}

const CONNECTION_FILE: &str = "connection.json";

/// The connection profile remembered with `server`, if signing in to it used one.
pub fn remembered_token_server(data_dir: &Path, server: &str) -> Option<TokenServer> {
    let text = std::fs::read_to_string(data_dir.join(CONNECTION_FILE)).ok()?;
    serde_json::from_str::<TokenServer>(&text)
        .ok()
        .filter(|profile| profile.token_url == server)
}

/// Remembers a connection profile (no secrets in it) for the next start.
pub fn remember_token_server(data_dir: &Path, server: &TokenServer) -> Result<()> {
    let json = serde_json::to_string_pretty(server).map_err(|e| Error::Protocol {
        operation: "remembering the connection profile",
        detail: e.to_string(),
    })?;
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(data_dir.join(CONNECTION_FILE), json))
        .map_err(Error::io("remembering the connection profile"))
}

/// Whether `host` is this computer: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(server: &str, allow: bool) -> String {
        match checked_server(server, allow) {
            Ok(url) => format!("ok {url}"),
            Err(err) => err.code().to_owned(),
        }
    }

    #[test]
    fn https_anywhere_http_only_to_this_computer_unless_allowed() {
        assert_eq!(
            code("https://files.example.com/", false),
            "ok https://files.example.com"
        );
        assert_eq!(code("http://127.9.9.9:1", false), "ok http://127.9.9.9:1");
        assert_eq!(
            code("http://localhost:8480", false),
            "ok http://localhost:8480"
        );
        assert_eq!(code("http://[::1]:8480", false), "ok http://[::1]:8480");
        for insecure in [
            "http://files.example.com",
            "http://192.168.1.20:8480",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
        ] {
            assert_eq!(code(insecure, false), "insecure_server", "{insecure}");
        }
        assert_eq!(
            code("http://files.example.com", true),
            "ok http://files.example.com"
        );
        for bad in [
            "files.example.com",
            "ftp://files.example.com",
            "file:///etc/passwd",
            "https://user:pw@files.example.com",
            "https://files.example.com/?x=1",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(code(bad, true), "invalid_server", "{bad}");
        }
    }

    #[test]
    fn the_data_dir_is_never_relative_to_where_the_app_was_started() {
        let platform = PathBuf::from("/home/ana/Library/Application Support");
        let earlier = tempfile::tempdir().unwrap();
        assert_eq!(
            data_dir_from(None, Some(platform.clone()), Some(earlier.path().into())),
            platform.join(flavour()),
            "nothing kept earlier"
        );
        std::fs::create_dir(earlier.path().join(flavour())).unwrap();
        assert_eq!(
            data_dir_from(None, Some(platform.clone()), Some(earlier.path().into())),
            earlier.path().join(flavour()),
            "an earlier version's data dir stays in use"
        );
        assert_eq!(
            data_dir_from(Some("/srv/ferry".into()), Some(platform), None),
            PathBuf::from("/srv/ferry")
        );
        // No platform data dir (no home at all): still an absolute path.
        assert!(data_dir_from(None, None, None).is_absolute());
    }
}
