//! The app server's address as the desktop accepts it: `https://`, or `http://` to this
//! computer (loopback). Plain `http://` to another host would carry the password, the session
//! and the storage credentials in clear, so it is refused unless the user explicitly allowed
//! it. The check runs in Rust before anything is sent: the webview is not trusted to do it.

use std::net::IpAddr;

use tauri::Url;

use crate::error::{CommandError, CommandResult};

/// `server` as the engine gets it (no trailing `/`), or why it is refused.
pub(crate) fn checked(server: &str, allow_insecure: bool) -> CommandResult<String> {
    let invalid = |why: &str| {
        CommandError::new(
            "invalid_server",
            format!("{why}: give the server as https://host[:port]."),
        )
    };
    let url = Url::parse(server.trim()).map_err(|_| invalid("That is not a server address"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("The address must not hold a name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("The address must not have a query or fragment"));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid("The address has no host"));
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) || allow_insecure => {}
        "http" => {
            return Err(CommandError::new(
                "insecure_server",
                format!(
                    "{host} would be reached without encryption (http://): your password and \
                     files could be read on the way. Use https://, or allow it explicitly."
                ),
            ));
        }
        _ => {
            return Err(invalid(
                "Only https:// (or http:// to this computer) is allowed",
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
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
        match checked(server, allow) {
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
        assert_eq!(
            code("http://127.0.0.1:8480", false),
            "ok http://127.0.0.1:8480"
        );
        assert_eq!(code("http://127.9.9.9:1", false), "ok http://127.9.9.9:1");
        assert_eq!(
            code("http://localhost:8480", false),
            "ok http://localhost:8480"
        );
        assert_eq!(code("http://[::1]:8480", false), "ok http://[::1]:8480");
        assert_eq!(code("http://files.example.com", false), "insecure_server");
        assert_eq!(code("http://192.168.1.20:8480", false), "insecure_server");
        assert_eq!(
            code("http://127.0.0.1.example.com", false),
            "insecure_server"
        );
        assert_eq!(
            code("http://localhost.example.com", false),
            "insecure_server"
        );
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
}
