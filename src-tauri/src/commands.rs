//! The commands the UI invokes: each parses, calls the engine (through `Desktop`), and maps the
//! error to `{code, message}`. Shapes match `ui/src/backend.ts`. The webview is not trusted: no
//! command takes a path to read or a server address it has not checked.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_engine::conflict::OnConflict;
use ferry_engine::credentials::CredentialStatus;
use ferry_engine::events::ErrorInfo;
use ferry_engine::journal::SavedFolder;
use ferry_engine::secret::Secret;
use ferry_engine::watch::FolderStatus;
use serde::{Deserialize, Serialize};
use tauri::State;
use time::format_description::well_known::Rfc3339;

use crate::desktop::{Desktop, SignIn, blocking};
use crate::error::{CommandError, CommandResult};
use crate::picks::{self, Picked};
use crate::queue::{self, QueuePage, QueueQuery};
use crate::settings::{self, Settings};
use crate::shell;
use crate::tray::TrayStatus;

type Shared<'a> = State<'a, Arc<Desktop>>;
type Tray<'a> = State<'a, Arc<TrayStatus>>;

fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct SessionStatus {
    user: Option<ferry_protocol::User>,
    server: String,
    session_expires_at: Option<String>,
    online: bool,
}

async fn status(desktop: &Desktop) -> SessionStatus {
    let running = desktop.running.read().await;
    let user = running.as_ref().and_then(|r| r.engine.session().user());
    // Signed in and the server answering: a session kept through an offline start is not.
    let reachable = running.as_ref().is_some_and(|r| r.engine.online());
    SessionStatus {
        online: user.is_some() && reachable,
        session_expires_at: user.as_ref().and_then(|(_, at)| rfc3339(*at)),
        user: user.map(|(u, _)| u),
        server: desktop.server(),
    }
}

#[tauri::command]
pub(crate) async fn restore(desktop: Shared<'_>, tray: Tray<'_>) -> CommandResult<SessionStatus> {
    desktop.restore().await?;
    tray.recount_soon();
    Ok(status(&desktop).await)
}

/// The sign-in form. The password is wrapped at once and never kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInRequest {
    server: String,
    username: String,
    password: String,
    remember: bool,
    memory_only: bool,
    #[serde(default)]
    allow_insecure: bool,
    /// A connection profile's text, for a server that only hands out credentials.
    #[serde(default)]
    connection: Option<String>,
}

#[tauri::command]
pub(crate) async fn sign_in(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
    tray: Tray<'_>,
    request: SignInRequest,
) -> CommandResult<ferry_protocol::User> {
    let remember = request.remember && !request.memory_only;
    // The page may ask for plain http:// to another computer, but only the user, in a window
    // of Ferry's own, may allow it.
    if request.allow_insecure {
        crate::consent::insecure_server(&app, &request.server).await?;
    }
    let signed_in = desktop
        .sign_in(SignIn {
            server: request.server,
            username: request.username,
            password: Secret::new(request.password),
            remember,
            allow_insecure: request.allow_insecure,
            connection: request.connection,
        })
        .await;
    tray.recount_soon();
    signed_in
}

#[tauri::command]
pub(crate) async fn sign_out(desktop: Shared<'_>, tray: Tray<'_>) -> CommandResult<()> {
    let signed_out = desktop.sign_out().await;
    tray.recount_soon();
    signed_out
}

/// Queues what the user picked; `ids` come from `pick_files` / `pick_folder`. There is no way
/// to queue a path the webview names.
#[tauri::command]
pub(crate) async fn enqueue(desktop: Shared<'_>, ids: Vec<u64>) -> CommandResult<()> {
    desktop.enqueue_picked(&ids).await
}

#[tauri::command]
pub(crate) async fn pick_files(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
) -> CommandResult<Vec<Picked>> {
    let files = picks::files(&app).await;
    Ok(files
        .into_iter()
        .map(|f| desktop.picks.remember(f))
        .collect())
}

#[tauri::command]
pub(crate) async fn pick_folder(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
) -> CommandResult<Option<Picked>> {
    let folder = picks::folder(&app).await;
    Ok(folder.map(|f| desktop.picks.remember(f)))
}

/// A page of the queue, oldest first (this account's files and other accounts' unfinished
/// ones), and the totals over all of this account's files.
#[tauri::command]
pub(crate) async fn queue(
    desktop: Shared<'_>,
    query: Option<QueueQuery>,
) -> CommandResult<QueuePage> {
    let engine = desktop.engine().await?;
    let max_attempts = desktop.settings().transfer().max_attempts;
    let query = query.unwrap_or_default();
    let words = desktop.words();
    blocking("reading the queue", move || {
        queue::page(&engine, &query, max_attempts, words)
    })
    .await
}

/// Takes this account's finished files out of the queue's view; returns how many.
#[tauri::command]
pub(crate) async fn clear_finished(desktop: Shared<'_>) -> CommandResult<u64> {
    Ok(desktop.engine().await?.clear_finished().await?)
}

/// One step of "Test connection": whether it answered, or the error's code and words.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "ConnectionStep"))]
pub(crate) struct Step {
    ok: bool,
    error: Option<ErrorInfo>,
}

impl From<ferry_engine::Result<()>> for Step {
    fn from(result: ferry_engine::Result<()>) -> Self {
        Self {
            ok: result.is_ok(),
            error: result.err().map(|e| ErrorInfo::from(&e)),
        }
    }
}

/// What "Test connection" found: the app server, and (signed in) the store.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct ConnectionReport {
    server: Step,
    store: Option<Step>,
}

/// Tests the way to the app server and (signed in) to the store, each on its own, with the
/// network settings as saved; signed out, the way to `server` (the one the sign-in form
/// names), or the remembered one.
#[tauri::command]
pub(crate) async fn check_connection(
    desktop: Shared<'_>,
    server: Option<String>,
) -> CommandResult<ConnectionReport> {
    let check = desktop.check_connection(server).await?;
    Ok(ConnectionReport {
        server: check.server.into(),
        store: check.store.map(Step::from),
    })
}

/// Files one decision names at most (all of them: no list).
const MAX_DECIDED: usize = 1000;

/// Settles this account's files waiting for a decision about an object at their key (`ids`,
/// or all of them and every file still to come that would ask) with `rule`; how many were
/// queued again.
#[tauri::command]
pub(crate) async fn decide(
    desktop: Shared<'_>,
    ids: Option<Vec<i64>>,
    rule: OnConflict,
) -> CommandResult<u64> {
    let engine = desktop.engine().await?;
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_DECIDED) {
        return Err(CommandError::new(
            "invalid_request",
            format!("decide at most {MAX_DECIDED} files at once, or all of them"),
        ));
    }
    if let Some(ids) = &ids {
        desktop.check_mine(&engine, ids).await?;
    }
    Ok(engine.decide(ids.as_deref(), rule).await?)
}

/// Pause, resume, retry or cancel this account's files (`ids`, or all of them).
#[tauri::command]
pub(crate) async fn control(
    desktop: Shared<'_>,
    action: String,
    ids: Option<Vec<i64>>,
) -> CommandResult<()> {
    desktop.control(&action, ids).await
}

/// The engine's [`ferry_engine::credentials::CredentialStatus`] as the status bar reads it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "CredentialStatus"))]
pub(crate) struct CredentialView {
    expires_at: Option<String>,
    refreshing: bool,
    refreshed_at: Option<String>,
    /// Why the last refresh failed; cleared by the next good one.
    last_error: Option<ErrorInfo>,
    /// After a failed refresh: the next try is not before this.
    retry_at: Option<String>,
    /// The current grant could not be saved in the keychain (it works from memory).
    keychain_error: Option<ErrorInfo>,
}

impl From<CredentialStatus> for CredentialView {
    fn from(s: CredentialStatus) -> Self {
        Self {
            expires_at: s.expires_at.and_then(rfc3339),
            refreshing: s.refreshing,
            refreshed_at: s.refreshed_at.and_then(rfc3339),
            last_error: s.last_error,
            retry_at: s.retry_at.and_then(rfc3339),
            keychain_error: s.keychain_error,
        }
    }
}

#[tauri::command]
pub(crate) async fn credentials(desktop: Shared<'_>) -> CommandResult<CredentialView> {
    Ok(desktop.engine().await?.credentials().status().into())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct FolderItem {
    path: PathBuf,
    prefix: String,
    excludes: Vec<String>,
    enabled: bool,
    last_scan: Option<String>,
    queued: u64,
    skipped: u64,
    /// Why it cannot be watched now: the engine's code (the page words it) and sentence.
    error: Option<ErrorInfo>,
    on_conflict: OnConflict,
}

impl FolderItem {
    fn new(kept: SavedFolder, status: FolderStatus) -> Self {
        Self {
            last_scan: status
                .last_scan
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .and_then(rfc3339),
            queued: status.queued,
            skipped: status.skipped,
            error: status.error,
            path: kept.folder.path,
            prefix: kept.folder.prefix,
            excludes: kept.folder.excludes,
            on_conflict: kept.folder.on_conflict,
            enabled: kept.enabled,
        }
    }
}

#[tauri::command]
pub(crate) async fn folders(desktop: Shared<'_>) -> CommandResult<Vec<FolderItem>> {
    let Ok(engine) = desktop.engine().await else {
        return Ok(Vec::new());
    };
    let live = engine.watcher().status();
    Ok(engine
        .folders()
        .await?
        .into_iter()
        .map(|f| {
            let status = live.iter().find(|(l, _)| l.path == f.folder.path);
            let status = status.map(|(_, s)| s.clone()).unwrap_or_default();
            FolderItem::new(f, status)
        })
        .collect())
}

/// A folder to watch: `pick` comes from `pick_folder`.
#[derive(Deserialize)]
pub(crate) struct NewFolder {
    pick: u64,
    prefix: String,
    excludes: Vec<String>,
    /// What its files do when their key already holds an object (ask when not said).
    #[serde(default, rename = "onConflict")]
    on_conflict: OnConflict,
}

#[tauri::command]
pub(crate) async fn add_folder(desktop: Shared<'_>, folder: NewFolder) -> CommandResult<()> {
    desktop
        .add_folder(
            folder.pick,
            folder.prefix,
            folder.excludes,
            folder.on_conflict,
        )
        .await
}

#[tauri::command]
pub(crate) async fn set_folder_enabled(
    desktop: Shared<'_>,
    path: PathBuf,
    enabled: bool,
) -> CommandResult<()> {
    desktop.set_folder_enabled(&path, enabled).await
}

#[tauri::command]
pub(crate) async fn remove_folder(desktop: Shared<'_>, path: PathBuf) -> CommandResult<()> {
    desktop.remove_folder(&path).await
}

#[derive(Deserialize, Default)]
pub(crate) struct HistoryQuery {
    user: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

impl HistoryQuery {
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("user", &self.user),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!(
                    "{name}={}",
                    ferry_engine::dialect::uri_encode(v, false)
                ));
            }
        }
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        parts.join("&")
    }
}

#[tauri::command]
pub(crate) async fn history(
    desktop: Shared<'_>,
    query: HistoryQuery,
) -> CommandResult<ferry_protocol::UploadPage> {
    Ok(desktop.engine().await?.history(&query.to_query()).await?)
}

#[tauri::command]
pub(crate) async fn history_csv(desktop: Shared<'_>, query: HistoryQuery) -> CommandResult<String> {
    Ok(desktop
        .engine()
        .await?
        .history_csv(&query.to_query())
        .await?)
}

/// Asks where to save the diagnostics zip (logs and a queue summary, secrets left out) and
/// writes it; where it went, or nothing when the dialog was cancelled.
#[tauri::command]
pub(crate) async fn save_diagnostics(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
) -> CommandResult<Option<String>> {
    // Before the dialog: asking where to save what cannot be written helps nobody.
    let engine = desktop.engine().await?;
    let title = desktop.words().save_diagnostics_title;
    let Some(path) = picks::save_as(&app, title, "ferry-diagnostics.zip").await else {
        return Ok(None);
    };
    engine.save_diagnostics(&desktop.data_dir, &path).await?;
    Ok(Some(path.display().to_string()))
}

#[tauri::command]
pub(crate) async fn stats(
    desktop: Shared<'_>,
    query: HistoryQuery,
) -> CommandResult<Vec<ferry_protocol::DayStats>> {
    Ok(desktop.engine().await?.stats(&query.to_query()).await?.rows)
}

/// The settings as the page shows them: the saved ones, and whether a proxy password is kept
/// (never the password).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct SettingsView {
    #[serde(flatten)]
    settings: Settings,
    proxy_password_saved: bool,
}

#[tauri::command]
pub(crate) async fn settings(desktop: Shared<'_>) -> CommandResult<SettingsView> {
    Ok(SettingsView {
        settings: desktop.settings(),
        proxy_password_saved: desktop.proxy_password_saved().await,
    })
}

/// Saves the settings the page sent; a new language shows in the tray at once (the page words
/// itself again: see [`locale`]).
#[tauri::command]
pub(crate) async fn save_settings(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
    tray: Tray<'_>,
    mut settings: serde_json::Value,
) -> CommandResult<()> {
    let password = settings::take_proxy_password(&mut settings);
    let settings = Settings::from_page(settings, &desktop.settings(), desktop.words())?;
    desktop.save_settings(&settings, password).await?;
    tray.relabel();
    shell::start_at_login(&app, settings.start_at_login)
}

/// The language the app speaks, as the page names its catalogs: `"en"` or `"zh-CN"` (the one
/// the settings choose, or the OS's). The page asks at start and after saving settings.
#[tauri::command]
pub(crate) async fn locale(desktop: Shared<'_>) -> CommandResult<&'static str> {
    Ok(desktop.lang().tag())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::watch::Folder;

    fn gone() -> ErrorInfo {
        ErrorInfo {
            code: "folder_missing".into(),
            message: "the folder /home/alice/Photos does not exist".into(),
        }
    }

    /// The page words an error by its code (in Chinese, its own sentence before the engine's
    /// English one): folders and credentials give the code, not only the sentence.
    #[test]
    fn folder_and_credential_errors_reach_the_page_with_their_code() {
        let kept = SavedFolder {
            folder: Folder {
                path: "/home/alice/Photos".into(),
                prefix: String::new(),
                excludes: Vec::new(),
                on_conflict: OnConflict::Ask,
            },
            enabled: true,
        };
        let status = FolderStatus {
            error: Some(gone()),
            ..FolderStatus::default()
        };
        let folder = serde_json::to_value(FolderItem::new(kept, status)).unwrap();
        assert_eq!(folder["error"]["code"], "folder_missing", "{folder}");
        let credentials = CredentialStatus {
            last_error: Some(gone()),
            keychain_error: Some(gone()),
            ..CredentialStatus::default()
        };
        let view = serde_json::to_value(CredentialView::from(credentials)).unwrap();
        assert_eq!(view["lastError"]["code"], "folder_missing", "{view}");
        assert_eq!(view["keychainError"]["code"], "folder_missing", "{view}");
    }
}
