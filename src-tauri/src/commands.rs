//! The commands the UI invokes: each parses, calls the engine (through `Desktop`), and maps the
//! error. Shapes match `ui/src/backend.ts`.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_engine::journal::FileState;
use ferry_engine::secret::Secret;
use serde::{Deserialize, Serialize};
use tauri::State;
use tauri_plugin_dialog::DialogExt;
use time::format_description::well_known::Rfc3339;

use crate::desktop::{Desktop, FolderConfig, Settings};
use crate::error::{CommandError, CommandResult};

type Shared<'a> = State<'a, Arc<Desktop>>;

fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionStatus {
    user: Option<ferry_protocol::User>,
    server: String,
    session_expires_at: Option<String>,
    online: bool,
}

async fn status(desktop: &Desktop) -> SessionStatus {
    let running = desktop.running.read().await;
    let user = running.as_ref().and_then(|r| r.engine.session().user());
    SessionStatus {
        online: user.is_some(),
        session_expires_at: user.as_ref().and_then(|(_, at)| rfc3339(*at)),
        user: user.map(|(u, _)| u),
        server: desktop.server(),
    }
}

#[tauri::command]
pub(crate) async fn restore(desktop: Shared<'_>) -> CommandResult<SessionStatus> {
    if desktop.running.read().await.is_none()
        && let Ok(engine) = desktop.open(&desktop.server(), false)
        && engine.restore().await.ok().flatten().is_some()
    {
        desktop.start(engine).await?;
    }
    Ok(status(&desktop).await)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInRequest {
    server: String,
    username: String,
    password: String,
    remember: bool,
    memory_only: bool,
}

#[tauri::command]
pub(crate) async fn sign_in(
    desktop: Shared<'_>,
    request: SignInRequest,
) -> CommandResult<ferry_protocol::User> {
    *desktop.running.write().await = None;
    let engine = desktop.open(&request.server, request.memory_only || !request.remember)?;
    let device = std::env::var("HOSTNAME").unwrap_or_else(|_| "ferry-desktop".into());
    let user = engine
        .sign_in(&request.username, &Secret::new(request.password), &device)
        .await?;
    std::fs::create_dir_all(&desktop.data_dir)
        .and_then(|()| std::fs::write(desktop.data_dir.join("server"), &request.server))
        .map_err(|e| CommandError::new("io", e.to_string()))?;
    desktop.start(engine).await?;
    Ok(user)
}

#[tauri::command]
pub(crate) async fn sign_out(desktop: Shared<'_>) -> CommandResult<()> {
    let running = desktop.running.write().await.take();
    if let Some(running) = running {
        running.engine.sign_out().await?;
    }
    Ok(())
}

#[tauri::command]
pub(crate) async fn enqueue(desktop: Shared<'_>, paths: Vec<PathBuf>) -> CommandResult<()> {
    desktop.enqueue(&paths).await
}

#[tauri::command]
pub(crate) async fn pick_files(app: tauri::AppHandle) -> CommandResult<Vec<PathBuf>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().pick_files(move |files| {
        let _ = tx.send(files.unwrap_or_default());
    });
    let files = rx.await.unwrap_or_default();
    Ok(files
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .collect())
}

#[tauri::command]
pub(crate) async fn pick_folder(app: tauri::AppHandle) -> CommandResult<Option<PathBuf>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().pick_folder(move |folder| {
        let _ = tx.send(folder);
    });
    Ok(rx.await.ok().flatten().and_then(|f| f.into_path().ok()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueItem {
    id: i64,
    name: String,
    path: String,
    size: u64,
    sent: u64,
    rate: u64,
    eta_secs: Option<u64>,
    state: FileState,
    error: Option<ferry_engine::events::ErrorInfo>,
}

#[tauri::command]
pub(crate) async fn queue(desktop: Shared<'_>) -> CommandResult<Vec<QueueItem>> {
    let engine = desktop.engine().await?;
    let mut rows = engine.files(500)?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|r| QueueItem {
            size: r
                .size
                .unwrap_or_else(|| std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0)),
            sent: r.bytes_done,
            id: r.id,
            name: r.name,
            path: r.path.display().to_string(),
            rate: 0,
            eta_secs: None,
            state: r.state,
            error: r.error_code.map(|code| ferry_engine::events::ErrorInfo {
                code,
                message: r.error_message.unwrap_or_default(),
            }),
        })
        .collect())
}

#[tauri::command]
pub(crate) async fn control(
    desktop: Shared<'_>,
    action: String,
    ids: Option<Vec<i64>>,
) -> CommandResult<()> {
    let engine = desktop.engine().await?;
    let ids = ids.as_deref();
    match action.as_str() {
        "pause" => engine.transfer().pause(ids)?,
        "resume" | "retry" => engine.transfer().resume(ids)?,
        "cancel" => engine.transfer().cancel(ids).await?,
        other => {
            return Err(CommandError::new(
                "invalid_request",
                format!("unknown action {other}"),
            ));
        }
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CredentialStatus {
    expires_at: Option<String>,
    refreshing: bool,
    refreshed_at: Option<String>,
    last_error: Option<String>,
}

#[tauri::command]
pub(crate) async fn credentials(desktop: Shared<'_>) -> CommandResult<CredentialStatus> {
    let engine = desktop.engine().await?;
    let expires_at = engine.credentials().expires_at().await.and_then(rfc3339);
    let refreshed_at = engine.credentials().refreshed_at().await.and_then(rfc3339);
    Ok(CredentialStatus {
        expires_at,
        refreshing: false,
        refreshed_at,
        last_error: None,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FolderItem {
    path: PathBuf,
    prefix: String,
    excludes: Vec<String>,
    enabled: bool,
    last_scan: Option<String>,
    queued: u64,
    skipped: u64,
    error: Option<String>,
}

#[tauri::command]
pub(crate) async fn folders(desktop: Shared<'_>) -> CommandResult<Vec<FolderItem>> {
    let live = match desktop.running.read().await.as_ref() {
        Some(r) => r.watcher.status(),
        None => Vec::new(),
    };
    Ok(desktop
        .folders()
        .into_iter()
        .map(|f| {
            let status = live
                .iter()
                .find(|(l, _)| l.path == f.path)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            FolderItem {
                last_scan: status
                    .last_scan
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .and_then(rfc3339),
                queued: status.queued,
                skipped: status.skipped,
                error: status.error.map(|e| e.message),
                path: f.path,
                prefix: f.prefix,
                excludes: f.excludes,
                enabled: f.enabled,
            }
        })
        .collect())
}

#[derive(Deserialize)]
pub(crate) struct NewFolder {
    path: PathBuf,
    prefix: String,
    excludes: Vec<String>,
}

#[tauri::command]
pub(crate) async fn add_folder(desktop: Shared<'_>, folder: NewFolder) -> CommandResult<()> {
    let NewFolder {
        path,
        prefix,
        excludes,
    } = folder;
    desktop
        .add_folder(FolderConfig {
            path,
            prefix,
            excludes,
            enabled: true,
        })
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

#[tauri::command]
pub(crate) async fn stats(
    desktop: Shared<'_>,
    query: HistoryQuery,
) -> CommandResult<Vec<ferry_protocol::DayStats>> {
    Ok(desktop.engine().await?.stats(&query.to_query()).await?.rows)
}

#[tauri::command]
pub(crate) async fn settings(desktop: Shared<'_>) -> CommandResult<Settings> {
    Ok(desktop.settings())
}

#[tauri::command]
pub(crate) async fn save_settings(
    app: tauri::AppHandle,
    desktop: Shared<'_>,
    settings: Settings,
) -> CommandResult<()> {
    use tauri_plugin_autostart::ManagerExt;
    desktop.save_settings(&settings)?;
    let launcher = app.autolaunch();
    let result = if settings.start_at_login {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| CommandError::new("autostart", format!("start at login: {e}")))
}
