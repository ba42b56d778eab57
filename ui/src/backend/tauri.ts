// The desktop app's backend: each method is one Tauri command of `ferry-desktop`; engine events
// arrive as the `ferry://event` event. Errors arrive as `{code, message, lang}` (`CommandError`). Files dropped on the
// window never reach the page: Rust queues them and sends `queue_changed`.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { CommandError } from "../generated/desktop";
import type { Locale } from "../lib/i18n.svelte";
import {
  BackendError,
  type Backend,
  type ConnectionReport,
  type Control,
  type CredentialStatus,
  type DayStats,
  type EngineEvent,
  type FolderItem,
  type HistoryQuery,
  type OnConflict,
  type Picked,
  type QueuePage,
  type QueueQuery,
  type SessionStatus,
  type Settings,
  type SignInRequest,
  type UploadPage,
  type User,
} from "../backend";

async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (err) {
    const e = (typeof err === "object" && err !== null ? err : {}) as Partial<CommandError>;
    throw new BackendError(e.code ?? "invalid_request", e.message ?? String(err), e.lang ?? "en");
  }
}

export class TauriBackend implements Backend {
  restore = () => call<SessionStatus>("restore");
  signIn = (request: SignInRequest) => call<User>("sign_in", { request });
  signOut = () => call<void>("sign_out");
  enqueue = (ids: number[]) => call<void>("enqueue", { ids });
  pickFiles = () => call<Picked[]>("pick_files");
  pickFolder = () => call<Picked | null>("pick_folder");
  queue = (query: QueueQuery = {}) => call<QueuePage>("queue", { query });
  clearFinished = () => call<number>("clear_finished");
  control = (action: Control, ids: number[] | null) => call<void>("control", { action, ids });
  credentials = () => call<CredentialStatus>("credentials");
  folders = () => call<FolderItem[]>("folders");
  addFolder = (folder: { pick: number; prefix: string; excludes: string[]; onConflict: OnConflict }) =>
    call<void>("add_folder", { folder });
  decide = (ids: number[] | null, rule: OnConflict) => call<number>("decide", { ids, rule });
  setFolderEnabled = (path: string, enabled: boolean) => call<void>("set_folder_enabled", { path, enabled });
  removeFolder = (path: string) => call<void>("remove_folder", { path });
  history = (query: HistoryQuery) => call<UploadPage>("history", { query });
  historyCsv = (query: HistoryQuery) => call<string>("history_csv", { query });
  saveDiagnostics = () => call<string | null>("save_diagnostics");
  stats = (query: HistoryQuery) => call<DayStats[]>("stats", { query });
  settings = () => call<Settings>("settings");
  locale = () => call<Locale>("locale");
  saveSettings = (settings: Settings) => call<void>("save_settings", { settings });
  checkConnection = (server?: string) => call<ConnectionReport>("check_connection", { server: server ?? null });
  onEvent(listener: (event: EngineEvent) => void): () => void {
    let stop: (() => void) | null = null;
    let stopped = false;
    void listen<EngineEvent>("ferry://event", (e) => listener(e.payload)).then((unlisten) => {
      if (stopped) unlisten();
      else stop = unlisten;
    });
    return () => {
      stopped = true;
      stop?.();
    };
  }
}
