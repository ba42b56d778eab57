//! The desktop's state around one engine: which server, which keychain, the watched folders and
//! settings (plain JSON files in the data dir — never secrets), and the background tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_engine::events::{Event, EventSink};
use ferry_engine::keychain::{Keychain, MemoryKeychain, OsKeychain};
use ferry_engine::transfer::TransferSettings;
use ferry_engine::watch::{Folder, Watcher};
use ferry_engine::{Engine, EngineConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::error::{CommandError, CommandResult};

/// Upload settings as the Settings screen shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Settings {
    pub(crate) files: usize,
    pub(crate) parts_in_flight: usize,
    pub(crate) part_size_mib: u64,
    pub(crate) bandwidth_mibs: Option<u64>,
    pub(crate) start_at_login: bool,
    pub(crate) notifications: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            files: 4,
            parts_in_flight: 4,
            part_size_mib: 8,
            bandwidth_mibs: None,
            start_at_login: false,
            notifications: true,
        }
    }
}

impl Settings {
    fn transfer(&self) -> TransferSettings {
        TransferSettings {
            files: self.files.max(1),
            parts: self.parts_in_flight.max(1),
            per_file_parts: self.parts_in_flight.max(1),
            min_part_size: self.part_size_mib.max(5) * 1024 * 1024,
            bandwidth: self.bandwidth_mibs.map(|m| m * 1024 * 1024),
            ..TransferSettings::default()
        }
    }
}

/// A watched folder as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FolderConfig {
    pub(crate) path: PathBuf,
    pub(crate) prefix: String,
    pub(crate) excludes: Vec<String>,
    pub(crate) enabled: bool,
}

impl FolderConfig {
    fn watched(&self) -> Folder {
        Folder {
            path: self.path.clone(),
            prefix: self.prefix.clone(),
            excludes: self.excludes.clone(),
        }
    }
}

pub(crate) struct Running {
    pub(crate) engine: Arc<Engine>,
    pub(crate) watcher: Arc<Watcher>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The desktop app's state.
pub(crate) struct Desktop {
    pub(crate) data_dir: PathBuf,
    pub(crate) events: EventSink,
    pub(crate) running: RwLock<Option<Running>>,
}

fn keychain_service() -> &'static str {
    if cfg!(debug_assertions) {
        "ferry-dev"
    } else {
        "ferry"
    }
}

impl Desktop {
    pub(crate) fn new(data_dir: PathBuf, events: EventSink) -> Self {
        Self {
            data_dir,
            events,
            running: RwLock::new(None),
        }
    }

    fn read<T: for<'de> Deserialize<'de> + Default>(&self, name: &str) -> T {
        std::fs::read_to_string(self.data_dir.join(name))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> CommandResult<()> {
        std::fs::create_dir_all(&self.data_dir)
            .and_then(|()| {
                std::fs::write(
                    self.data_dir.join(name),
                    serde_json::to_vec_pretty(value).unwrap_or_default(),
                )
            })
            .map_err(|e| CommandError::new("io", format!("saving {name}: {e}")))
    }

    pub(crate) fn server(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "http://127.0.0.1:8480".into())
    }

    pub(crate) fn settings(&self) -> Settings {
        self.read("settings.json")
    }

    pub(crate) fn save_settings(&self, settings: &Settings) -> CommandResult<()> {
        if settings.files == 0 || settings.parts_in_flight == 0 || settings.part_size_mib < 5 {
            return Err(CommandError::new(
                "invalid_settings",
                "Parts must be at least 5 MiB and limits at least 1.",
            ));
        }
        self.write("settings.json", settings)
    }

    pub(crate) fn folders(&self) -> Vec<FolderConfig> {
        self.read("folders.json")
    }

    pub(crate) fn save_folders(&self, folders: &[FolderConfig]) -> CommandResult<()> {
        self.write("folders.json", &folders)
    }

    /// Watches a new folder (now, if signed in) and saves it.
    pub(crate) async fn add_folder(&self, folder: FolderConfig) -> CommandResult<()> {
        let mut all = self.folders();
        if all.iter().any(|f| f.path == folder.path) {
            return Err(CommandError::new(
                "duplicate",
                "That folder is watched already.",
            ));
        }
        if let Some(running) = self.running.read().await.as_ref() {
            running.watcher.add(folder.watched())?;
        }
        all.push(folder);
        self.save_folders(&all)
    }

    /// Turns watching a saved folder on or off.
    pub(crate) async fn set_folder_enabled(&self, path: &Path, enabled: bool) -> CommandResult<()> {
        let mut all = self.folders();
        let Some(folder) = all.iter_mut().find(|f| f.path == path) else {
            return Err(CommandError::new("not_found", "No such watched folder."));
        };
        folder.enabled = enabled;
        if let Some(running) = self.running.read().await.as_ref() {
            if enabled {
                running.watcher.add(folder.watched())?;
            } else {
                running.watcher.remove(path);
            }
        }
        self.save_folders(&all)
    }

    /// Stops watching a folder and forgets it.
    pub(crate) async fn remove_folder(&self, path: &Path) -> CommandResult<()> {
        if let Some(running) = self.running.read().await.as_ref() {
            running.watcher.remove(path);
        }
        let all: Vec<FolderConfig> = self
            .folders()
            .into_iter()
            .filter(|f| f.path != path)
            .collect();
        self.save_folders(&all)
    }

    /// Opens an engine against `server` with the OS keychain, or memory when asked.
    pub(crate) fn open(&self, server: &str, memory_only: bool) -> CommandResult<Arc<Engine>> {
        let keychain: Arc<dyn Keychain> = if memory_only {
            Arc::new(MemoryKeychain::default())
        } else {
            Arc::new(OsKeychain::open(keychain_service())?)
        };
        let engine = Engine::open(EngineConfig {
            data_dir: self.data_dir.clone(),
            server: server.to_owned(),
            keychain,
            events: self.events.clone(),
            transfer: self.settings().transfer(),
            grant_ttl: None,
            device: std::env::var("HOSTNAME").unwrap_or_else(|_| "ferry-desktop".into()),
        })?;
        Ok(Arc::new(engine))
    }

    /// Starts the scheduler and the watcher for a signed-in engine.
    pub(crate) async fn start(&self, engine: Arc<Engine>) -> CommandResult<()> {
        let watcher = engine.watcher();
        for folder in self.folders().into_iter().filter(|f| f.enabled) {
            watcher.add(folder.watched())?;
        }
        // Fetch the first grant now, so the countdown shows from the start.
        let credentials = engine.credentials().clone();
        let prefetch = tokio::spawn(async move {
            if let Err(err) = credentials.current().await {
                tracing::warn!(error = %err, "could not get storage credentials yet");
            }
        });
        let transfer = engine.transfer().clone();
        let events = self.events.clone();
        let run_transfer = tokio::spawn(async move {
            if let Err(err) = transfer.run().await {
                tracing::error!(error = %err, "the scheduler stopped");
                events(Event::SessionExpired);
            }
        });
        let w = watcher.clone();
        let run_watcher = tokio::spawn(async move {
            if let Err(err) = w.run().await {
                tracing::error!(error = %err, "the folder watcher stopped");
            }
        });
        *self.running.write().await = Some(Running {
            engine,
            watcher,
            tasks: vec![prefetch, run_transfer, run_watcher],
        });
        Ok(())
    }

    /// Adds files and folders to the queue: the `enqueue` command and a drop on the window both
    /// come here.
    pub(crate) async fn enqueue(&self, paths: &[PathBuf]) -> CommandResult<()> {
        self.engine().await?.enqueue(paths).await?;
        Ok(())
    }

    /// The running engine, or `signed_out`.
    pub(crate) async fn engine(&self) -> CommandResult<Arc<Engine>> {
        self.running
            .read()
            .await
            .as_ref()
            .map(|r| r.engine.clone())
            .ok_or_else(|| CommandError::new("signed_out", "Sign in first."))
    }
}
