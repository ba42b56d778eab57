//! What a user sends when asking for help: a zip of Ferry's logs and a summary of its journal
//! (states, the files that failed or wait, why, their attempts and the store's request ids),
//! with every secret the engine holds — the session token, the storage secret and security
//! token, the proxy's password — and anything shaped like a credential or a signature replaced
//! by `[redacted]`.
//!
//! The logs are written by the front ends through [`LogFile`]: one file in the data dir's
//! `logs/`, kept under a size by turning it over once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::credentials::Credentials;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::journal::{Journal, Owner};
use crate::keychain::Keychain;

/// The log file's name in [`log_dir`]; the one before it has `.1` appended.
pub const LOG_FILE: &str = "ferry.log";

/// Bytes a log file reaches before it is turned over.
const LOG_MAX: u64 = 4 * 1024 * 1024;

/// The target of events meant for the log file only (a front end already told the person,
/// on stderr or in the window, in its own words).
pub const LOG_ONLY: &str = "ferry::log_only";

/// What replaces a secret.
const REDACTED: &str = "[redacted]";

/// Files at most listed in the summary as failed or waiting.
const TROUBLED_MOST: usize = 200;

/// Where the logs of the data dir `data_dir` are.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// A log file that keeps itself small: at [`LOG_MAX`] bytes it becomes `ferry.log.1` (the one
/// before is dropped) and a new one begins. Cloned writers share one file.
#[derive(Clone)]
pub struct LogFile {
    inner: Arc<Mutex<Log>>,
}

struct Log {
    path: PathBuf,
    file: Option<std::fs::File>,
    written: u64,
}

impl LogFile {
    /// A log in [`log_dir`] of `data_dir` (made if missing). Nothing fails here: a log that
    /// cannot be written is not written.
    pub fn new(data_dir: &Path) -> Self {
        let dir = log_dir(data_dir);
        let _ = std::fs::create_dir_all(&dir);
        Self {
            inner: Arc::new(Mutex::new(Log {
                path: dir.join(LOG_FILE),
                file: None,
                written: 0,
            })),
        }
    }
}

impl Log {
    fn open(&mut self) -> std::io::Result<&mut std::fs::File> {
        if self.file.is_none() || self.written >= LOG_MAX {
            // Full: kept as the one before, or (when it cannot be) begun again.
            let full = self.written >= LOG_MAX;
            let kept =
                full && std::fs::rename(&self.path, self.path.with_extension("log.1")).is_ok();
            self.file = None;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .truncate(false)
                .open(&self.path)?;
            if full && !kept {
                file.set_len(0)?;
            }
            self.written = file.metadata().map_or(0, |m| m.len());
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }
}

/// Sends the process's log to stderr (warnings, or `FERRY_LOG`) and, given a data dir, to its
/// log file (from `info`, or `FERRY_LOG`): what [`Engine::save_diagnostics`] packs.
pub fn log_to(data_dir: Option<&Path>) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = |default: &str| {
        EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default))
    };
    let file = data_dir.map(LogFile::new);
    let _ = tracing_subscriber::registry()
        .with(fmt::layer().with_writer(std::io::stderr).with_filter(
            filter("warn").add_directive(format!("{LOG_ONLY}=off").parse().expect("a directive")),
        ))
        .with(file.map(|file| {
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || file.clone())
                .with_filter(filter("info"))
        }))
        .try_init();
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = log.open()?.write(buf)?;
        log.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match log.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Replaces secrets in text: the values given, and what follows the names credentials and
/// signatures travel under (headers, query parameters, JSON fields).
pub struct Redactor {
    secrets: Vec<String>,
}

/// Names whose value is a secret, however it is written after them (`name: v`, `name=v`,
/// `"name":"v"`); matched without regard to case where no letter, digit or `_` comes before
/// them — so `security-token` also finds `x-amz-security-token` and `x-oss-security-token`,
/// and `signature` finds `X-Amz-Signature`.
const SECRET_NAMES: &[&str] = &[
    "authorization",
    "security-token",
    "securitytoken",
    "security_token",
    "signature",
    "secret_access_key",
    "secretaccesskey",
    "accesskeysecret",
    "session_token",
    "sessiontoken",
    "token",
    "password",
    "bearer",
];

impl Redactor {
    /// A redactor of `secrets` (empty ones are ignored) and of every [`SECRET_NAMES`] value.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first: a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` with its secrets replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), REDACTED);
        }
        for name in SECRET_NAMES {
            out = redact_after(&out, name);
        }
        out
    }
}

/// Replaces the value after each `name` (case-insensitive, not part of a longer word) that is
/// followed by `:` or `=` with optional spaces, quotes or backslashes (escaped JSON) between: a
/// quoted value up to its closing quote, else up to the next space, quote, `&`, `,`, `;` or
/// `}` (`authorization`: to the end of the line). After `bearer` a space is enough, for values
/// as long as a token.
fn redact_after(text: &str, name: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(name) {
        let start = at + found;
        let after = start + name.len();
        out.push_str(&text[at..after]);
        at = after;
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if word(lower[..start].chars().next_back()) {
            continue;
        }
        let rest = &text[after..];
        let skip = rest
            .find(|c: char| !matches!(c, '"' | '\'' | '\\' | ':' | '=' | ' '))
            .unwrap_or(rest.len());
        let (between, value) = rest.split_at(skip);
        // After "bearer", a word shaped like a token (long, with a digit or a token's
        // punctuation): "Bearer eyJhbGciOi.eyJzdWIi.c2ln", not "bearer credentials".
        let token_like = |v: &str| {
            v.len() >= 8 && v.contains(|c: char| c.is_ascii_digit() || ".-_=+/".contains(c))
        };
        let separated = between.contains([':', '='])
            || (name == "bearer"
                && between == " "
                && value.split_whitespace().next().is_some_and(token_like));
        if !separated || value.is_empty() {
            continue;
        }
        let len = match between.chars().next_back() {
            // Quoted: to the same quote (escaped the same way in escaped JSON).
            Some(q @ ('"' | '\'')) => {
                let escaped = between.ends_with(&format!("\\{q}"));
                closing_quote(value, q, escaped)
            }
            _ if name == "authorization" => value.find(['\n', '\r']).unwrap_or(value.len()),
            _ => value
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '&' | ',' | ';' | '}')
                })
                .unwrap_or(value.len()),
        };
        out.push_str(between);
        out.push_str(REDACTED);
        at = after + skip + len;
    }
    out.push_str(&text[at..]);
    out
}

/// Where a value quoted with `quote` ends in `value`: at the closing quote — written `\\q`
/// when the value sits in escaped JSON, else a `q` not escaped —, or at the end of the line
/// when it never closes.
fn closing_quote(value: &str, quote: char, escaped: bool) -> usize {
    let line = value.find(['\n', '\r']).unwrap_or(value.len());
    let mut backslashes = 0;
    for (i, c) in value[..line].char_indices() {
        if c == quote {
            // Escaped JSON closes with one backslash before the quote; plain text with none
            // (an odd count escapes the quote).
            let closes = if escaped {
                backslashes == 1
            } else {
                backslashes % 2 == 0
            };
            if closes {
                return if escaped { i - 1 } else { i };
            }
        }
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
    }
    line
}

/// What the summary tells of the session, besides the journal.
struct Session {
    owner: Option<Owner>,
    /// The credentials' state, in words.
    credentials: String,
}

impl Engine {
    /// Writes the diagnostics zip to `out`: `summary.txt` and the logs, secrets redacted.
    pub async fn save_diagnostics(&self, data_dir: &Path, out: &Path) -> Result<()> {
        let mut secrets: Vec<String> = self.credentials().secrets().await;
        if let Ok(token) = self.session().token() {
            secrets.push(token.expose().to_owned());
        }
        secrets.extend(self.network_secrets().iter().map(|p| p.expose().to_owned()));
        let session = Session {
            owner: self.session().owner(),
            credentials: format!(
                "Credentials: {:?}\nOnline: {}",
                self.credentials().status(),
                self.online()
            ),
        };
        write(self.journal().clone(), session, secrets, data_dir, out).await
    }
}

/// Writes the diagnostics zip for `data_dir` without taking it — the app or `ferry watch`
/// may hold it, which is when help is needed: the journal read-only, the session and grant
/// the keychain keeps for `server` (to name the account and leave their secrets out), and
/// the secrets the caller knows besides (a proxy's password: left out too). Asks no server
/// anything.
pub async fn save_diagnostics_of(
    data_dir: &Path,
    server: &str,
    keychain: Arc<dyn Keychain>,
    known: &[crate::secret::Secret],
    out: &Path,
) -> Result<()> {
    let journal = Arc::new(Journal::open_read_only(&data_dir.join("journal.db"))?);
    let session = Arc::new(crate::session::Session::new(
        crate::api::ApiClient::new(server)?,
        keychain,
    ));
    let owner = session.stored_owner()?;
    let credentials = Credentials::new(
        session.clone(),
        crate::events::discard(),
        ferry_protocol::GrantRequest::default(),
    );
    let mut secrets = credentials.secrets().await;
    secrets.extend(session.stored_token()?.map(|t| t.expose().to_owned()));
    secrets.extend(known.iter().map(|s| s.expose().to_owned()));
    let expires = match &owner {
        Some(owner) => credentials.stored_expiry(owner).await,
        None => None,
    };
    let session = Session {
        owner,
        credentials: format!("Credentials kept in the keychain until: {expires:?}"),
    };
    write(journal, session, secrets, data_dir, out).await
}

/// The summary and the logs, redacted, into the zip at `out` (written beside it first, so a
/// failure leaves no half a zip and an old one is replaced only by a whole new one).
async fn write(
    journal: Arc<Journal>,
    session: Session,
    secrets: Vec<String>,
    data_dir: &Path,
    out: &Path,
) -> Result<()> {
    let redactor = Redactor::new(secrets);
    let logs = log_dir(data_dir);
    let out = out.to_owned();
    crate::blocking::run("writing diagnostics", move || {
        let summary = summary_text(&journal, &session);
        let mut part = out.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        let written = write_zip(&part, &redactor, &summary, &logs).and_then(|()| {
            std::fs::rename(&part, &out).map_err(Error::io(format!("writing {}", out.display())))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        written
    })
    .await
}

/// The journal and session as words: nothing secret, but redacted anyway on the way out. Lists
/// the signed-in account's files only (others' are not this user's to send).
fn summary_text(journal: &Journal, session: &Session) -> String {
    let mut text = format!(
        "Ferry {} diagnostics, written {}\nOS: {} {}\n\n",
        env!("CARGO_PKG_VERSION"),
        time::OffsetDateTime::now_utc(),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    let Some(owner) = &session.owner else {
        return text + "Not signed in: no files are listed\n";
    };
    text += &format!(
        "Signed in as {} on {}\n{}\n\n",
        owner.user_name, owner.server, session.credentials
    );
    let read = journal
        .counts(owner)
        .and_then(|counts| Ok((counts, journal.troubled(owner, TROUBLED_MOST)?)));
    let (counts, troubled) = match read {
        Ok(read) => read,
        Err(err) => return text + &format!("The journal could not be read: {err}\n"),
    };
    text += "Files per state:\n";
    for (state, n) in counts {
        text += &format!("  {:<10} {n}\n", state.as_str());
    }
    text += "\nFailed or waiting files (newest first):\n";
    for f in troubled {
        let next = f.next_retry_at.map(|at| format!(", next try at Unix {at}"));
        text += &format!(
            "  #{} {} [{}] {} — {} ({} attempt(s){})\n",
            f.id,
            f.name,
            f.state.as_str(),
            f.error_code.as_deref().unwrap_or("-"),
            f.error_message.as_deref().unwrap_or("-"),
            f.attempts,
            next.unwrap_or_default(),
        );
    }
    text
}

fn write_zip(out: &Path, redactor: &Redactor, summary: &str, logs: &Path) -> Result<()> {
    let io = |source: std::io::Error| Error::Io {
        context: format!("writing {}", out.display()),
        source,
    };
    let zipping = |e: zip::result::ZipError| io(std::io::Error::other(e));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out).map_err(io)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("summary.txt", options).map_err(zipping)?;
    zip.write_all(redactor.redact(summary).as_bytes())
        .map_err(io)?;
    for name in [format!("{LOG_FILE}.1"), LOG_FILE.to_owned()] {
        let Ok(bytes) = std::fs::read(logs.join(&name)) else {
            continue;
        };
        zip.start_file(format!("logs/{name}"), options)
            .map_err(zipping)?;
        let text = redactor.redact(&String::from_utf8_lossy(&bytes));
        zip.write_all(text.as_bytes()).map_err(io)?;
    }
    zip.finish().map_err(zipping)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_is_kept_once_as_the_one_before_and_a_new_one_begins() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::new(dir.path());
        let line = vec![b'x'; 64 * 1024];
        // Two files' worth: the first full one is turned over, then the second one is.
        for _ in 0..(2 * LOG_MAX / line.len() as u64 + 1) {
            log.write_all(&line).unwrap();
        }
        writeln!(log, "the newest line").unwrap();
        log.flush().unwrap();
        let logs = log_dir(dir.path());
        let now = std::fs::read_to_string(logs.join(LOG_FILE)).unwrap();
        let before = std::fs::metadata(logs.join(format!("{LOG_FILE}.1"))).unwrap();
        assert!(now.ends_with("the newest line\n"));
        assert!(now.len() as u64 <= LOG_MAX, "{} bytes", now.len());
        assert!(before.len() >= LOG_MAX && before.len() < LOG_MAX + line.len() as u64);
        let names = std::fs::read_dir(&logs).unwrap().count();
        assert_eq!(names, 2, "one log before the current one, no more");
    }

    #[test]
    fn secrets_and_what_follows_credential_names_are_redacted() {
        let r = Redactor::new(["s3cr3t-value".to_owned(), String::new()]);
        let cases = [
            ("token s3cr3t-value leaked", "token [redacted] leaked"),
            (
                "GET /a?X-Amz-Signature=abc123&x=1",
                "GET /a?X-Amz-Signature=[redacted]&x=1",
            ),
            (
                "authorization: AWS4-HMAC-SHA256 Credential=AK/1/r/s3/aws4_request, Signature=ff\nnext",
                "authorization: [redacted]\nnext",
            ),
            (
                r#"{"token":"abc.def","n":1}"#,
                r#"{"token":"[redacted]","n":1}"#,
            ),
            (
                "x-oss-security-token: CAIS+x/y==",
                "x-oss-security-token: [redacted]",
            ),
            ("Bearer eyJhbGciOi.eyJzdWIi.c2ln", "Bearer [redacted]"),
            ("a bearer credentials scheme", "a bearer credentials scheme"),
            (
                r#"password: "pa\"ss word" and more"#,
                r#"password: "[redacted]" and more"#,
            ),
            (
                "password: \"never closed\nnext line",
                "password: \"[redacted]\nnext line",
            ),
            ("tokens: 5, my_token_count=3", "tokens: 5, my_token_count=3"),
            (
                r#"{"password":"correct horse, battery"}"#,
                r#"{"password":"[redacted]"}"#,
            ),
            (
                r#"Debug { body: "{\"password\":\"p w\"}" }"#,
                r#"Debug { body: "{\"password\":\"[redacted]\"}" }"#,
            ),
            ("No bearer token was sent", "No bearer token was sent"),
            (
                "authorization: Basic YWxpY2U6cHc=\r\nhost: x",
                "authorization: [redacted]\r\nhost: x",
            ),
            (
                "ünïcode password=ß∂ƒ next",
                "ünïcode password=[redacted] next",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(r.redact(text), want, "{text}");
        }
    }
}
