// The one interface the UI talks through. `TauriBackend` calls the desktop app's commands;
// `MemoryBackend` simulates everything in the page, for UI tests and for looking at the UI in a
// browser. The UI never talks to storage or the app server itself.

import type { Event, FileState } from "./generated/events";
import type {
  ConnectionReport,
  CredentialStatus,
  DayStats,
  FolderItem,
  Language,
  OnConflict,
  Picked,
  QueuePage,
  QueueTotals,
  SessionStatus,
  UploadPage,
  UploadStatus,
  User,
  Settings as SavedSettings,
  SettingsView,
} from "./generated/desktop";
import { CATALOGS, localeOf, type Locale } from "./lib/i18n.svelte";

// What the desktop's commands answer: generated from its Rust types (`generated/desktop.ts`;
// the page's `Settings` below adds what it sends).
export type * from "./generated/desktop";
export type { SavedSettings };

/** Where a file is in its upload (the engine's `FileState`). */
export type { FileState };

/** Every rule, in the order the settings and the folder form offer them (their words are in
 * the catalogs, `rules`). */
export const CONFLICT_RULES: readonly OnConflict[] = ["ask", "skip", "overwrite", "rename", "newer"];

/** Every choice of language, as Settings offers them. */
export const LANGUAGES: readonly Language[] = ["system", "en", "zh-CN"];

/** The totals of a queue with no files. */
export function noTotals(): QueueTotals {
  return { files: 0, done: 0, active: 0, retrying: 0, failed: 0, asking: 0, paused: 0, finished: 0, sent: 0, size: 0, uploading: [] };
}

/** Which rows a page of the queue lists. */
export type Show = "all" | "unfinished" | "failed" | "finished";

export interface QueueQuery {
  show?: Show;
  /** The first row (0-based). */
  offset?: number;
  /** Rows at most: 1 to 500, 100 unless asked. */
  limit?: number;
}

export interface HistoryQuery {
  user?: string;
  status?: UploadStatus | "";
  since?: string;
  until?: string;
  q?: string;
  cursor?: string;
  limit?: number;
}

/** The header of the history CSV export, as the app server writes it. */
export const CSV_HEADER = "id,user,bucket,key,name,size,etag,checksum,device,started_at,completed_at,status,confirmed_by";

/** The settings as the page reads them (with whether the proxy's password is kept in the
 * keychain — never the password) and saves them (with a new password, sent only to be kept in
 * the keychain). */
export type Settings = SettingsView & { proxyPassword?: string };

/** What the engine tells the window (its `Event`, generated: `generated/events.ts`), and the
 * desktop's own word that the queue changed (files it queued from a drop). */
export type EngineEvent = Event | { type: "queue_changed" };

export interface SignInRequest {
  server: string;
  username: string;
  password: string;
  remember: boolean;
  memoryOnly: boolean;
  /** The user accepted plain http:// to a server that is not this computer. */
  allowInsecure: boolean;
  /** A connection profile's text (TOML or JSON) for a server that only hands out
   * credentials (one built from a vendor's tutorial); `server` is then unused. */
  connection?: string;
}

/** An error with the engine's stable code (`invalid_credentials`, `network`, …). */
export class BackendError extends Error {
  /** `lang`: the language `message` is in (the desktop's own sentences are in the window's;
   * the engine's, and by default, English). */
  constructor(
    readonly code: string,
    message: string,
    readonly lang = "en",
  ) {
    super(message);
  }
}

export type Control = "pause" | "resume" | "cancel" | "retry";

export interface Backend {
  restore(): Promise<SessionStatus>;
  signIn(request: SignInRequest): Promise<User>;
  signOut(): Promise<void>;
  /** Queues picked files and folders by pick id. Files dropped on the window are queued by
   * the backend itself, which then sends `queue_changed`. */
  enqueue(ids: number[]): Promise<void>;
  pickFiles(): Promise<Picked[]>;
  pickFolder(): Promise<Picked | null>;
  /** A page of the queue and the totals over all of it (never the whole queue: it may hold
   * 100 000 files). */
  queue(query?: QueueQuery): Promise<QueuePage>;
  /** Takes the signed-in account's finished files out of the queue's view (the journal keeps
   * them, so unchanged files are still not sent again); how many. */
  clearFinished(): Promise<number>;
  /** Acts on the signed-in account's files (`null`: all of them); another account's file is
   * `forbidden`. */
  control(action: Control, ids: number[] | null): Promise<void>;
  credentials(): Promise<CredentialStatus>;
  folders(): Promise<FolderItem[]>;
  /** Watches a folder; `pick` is the id `pickFolder` gave. */
  addFolder(folder: { pick: number; prefix: string; excludes: string[]; onConflict: OnConflict }): Promise<void>;
  /** Settles files waiting for a decision about an object at their key (`ids`; `null`: all of
   * them, and every file still to come that would ask) with `rule`; how many were queued
   * again. Another account's file is `forbidden`. */
  decide(ids: number[] | null, rule: OnConflict): Promise<number>;
  setFolderEnabled(path: string, enabled: boolean): Promise<void>;
  removeFolder(path: string): Promise<void>;
  history(query: HistoryQuery): Promise<UploadPage>;
  historyCsv(query: HistoryQuery): Promise<string>;
  stats(query: HistoryQuery): Promise<DayStats[]>;
  settings(): Promise<Settings>;
  /** The language the window speaks: the one chosen in Settings, or the system's. */
  locale(): Promise<Locale>;
  saveSettings(settings: Settings): Promise<void>;
  /** Tests the way to the app server and (signed in) to the store, each on its own, with the
   * network settings as saved; signed out, the way to `server` (the sign-in form's). */
  checkConnection(server?: string): Promise<ConnectionReport>;
  /** Asks where to save the diagnostics zip (logs and a queue summary, secrets left out) and
   * writes it; where it went, or `null` when the dialog was cancelled. */
  saveDiagnostics(): Promise<string | null>;
  onEvent(listener: (event: EngineEvent) => void): () => void;
}

/** `a.bin:5,b.bin:12` → `{ "a.bin": 5, "b.bin": 12 }`. */
function failing(param: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of (param ?? "").split(",")) {
    const [name, count] = pair.split(":");
    if (name && Number(count) > 0) out[name] = Number(count);
  }
  return out;
}

/** The desktop app's backend when running inside Tauri. The simulation (with its demo
 * accounts) exists only in the demo build (`npm run build:demo`, for the UI tests) and the dev
 * server: the build the desktop app embeds has none, and says so outside the app. */
export async function createBackend(): Promise<Backend> {
  const inTauri = typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
  if (inTauri) {
    const { TauriBackend } = await import("./backend/tauri");
    return new TauriBackend();
  }
  if (import.meta.env.MODE === "demo" || import.meta.env.DEV) return demoBackend();
  const tag = typeof navigator === "undefined" ? null : navigator.language;
  throw new BackendError("no_desktop", CATALOGS[localeOf(tag)].app.notInApp);
}

/** The simulation, set up from the page's address (`?contract`, `?ttl=`, `?failing=`,
 * `?unwatchable=`, `?refreshFails=`). */
async function demoBackend(): Promise<Backend> {
  const { MemoryBackend } = await import("./backend/memory");
  const params = new URLSearchParams(typeof location !== "undefined" ? location.search : "");
  const contract = params.has("contract");
  const backend = new MemoryBackend({
    grantTtlSecs: Number(params.get("ttl") ?? "120"),
    // `?failing=name:5,other:12`: the store answers 503 to that many PUTs of those files, to
    // see how retries look.
    failingPuts: failing(params.get("failing")),
    // `?unwatchable=/path`: a folder the watcher cannot watch, with the engine's error.
    unwatchable: params.getAll("unwatchable"),
    // `?refreshFails=N`: the first N refreshes of the storage credentials cannot reach the app
    // server.
    failingRefreshes: Number(params.get("refreshFails") ?? "0"),
    // The contract scenario's starting point: one file to pick, whose first five PUTs fail (as
    // the desktop's harness arranges with its fault proxy), no history yet.
    ...(contract
      ? { picked: { "/home/alice/contract.txt": 21 }, seedHistory: false, failingPuts: { "contract.txt": 5 } }
      : {}),
  });
  // Like the desktop window, which takes OS drops before the page sees them.
  if (typeof window !== "undefined") backend.takeDropsFrom(window);
  return backend;
}
