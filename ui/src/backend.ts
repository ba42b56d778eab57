// The one interface the UI talks through. `TauriBackend` calls the desktop app's commands;
// `MemoryBackend` simulates everything in the page, for UI tests and for looking at the UI in a
// browser. The UI never talks to storage or the app server itself.

import type { ErrorInfo, Event, FileState } from "./generated/events";
import { CATALOGS, localeOf, type Locale } from "./lib/i18n.svelte";

export type Role = "user" | "admin";
export interface User {
  id: number;
  name: string;
  role: Role;
}

/** Where a file is in its upload (the engine's `FileState`). */
export type { FileState };

export interface QueueItem {
  id: number;
  name: string;
  path: string;
  size: number;
  sent: number;
  rate: number;
  etaSecs: number | null;
  state: FileState;
  /** Why it failed or was skipped; the last attempt's error while a retry is scheduled. */
  error: { code: string; message: string } | null;
  /** When a failed file (or the confirmation of an uploaded one) is tried again by itself;
   * null when it is not (a file failed for good waits for the user). */
  retryAt: string | null;
  /** Failed attempts so far. */
  attempts: number;
  /** Failed attempts after which the file waits for the user. */
  maxAttempts: number;
  /** The name of the account the file belongs to ("alice", or "alice at https://…" on another
   * server); null for files added before files had owners. */
  owner: string | null;
  /** Whether the signed-in account owns it. Other accounts' files are never uploaded by this
   * session: they wait for their owner to sign in, and cannot be paused, resumed or cancelled. */
  mine: boolean;
}

/** What a file does when an object is already at its key in the store (not one it put there
 * itself): wait for the user, leave the object, replace it, keep both (`name (1).ext`), or
 * replace it only if the file is newer. */
export type OnConflict = "ask" | "skip" | "overwrite" | "rename" | "newer";

/** Every rule, in the order the settings and the folder form offer them (their words are in
 * the catalogs, `rules`). */
export const CONFLICT_RULES: readonly OnConflict[] = ["ask", "skip", "overwrite", "rename", "newer"];

/** The window's language as chosen in Settings: the system's, or one of its catalogs. */
export type Language = "system" | Locale;

/** Every choice of language, as Settings offers them. */
export const LANGUAGES: readonly Language[] = ["system", "en", "zh-CN"];

/** A file waiting for a decision about the object already at its key. */
export interface Conflict {
  id: number;
  name: string;
  path: string;
  /** Its key below the account's upload prefix. */
  key: string;
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

/** The signed-in account's files in view, counted over all of them (not only a page). */
export interface QueueTotals {
  /** Files not skipped or cancelled. */
  files: number;
  /** Confirmed. */
  done: number;
  /** On their way: queued, uploading, or uploaded and being confirmed. */
  active: number;
  /** Waiting for their next attempt. */
  retrying: number;
  /** Failed for good: they wait for the user. */
  failed: number;
  paused: number;
  /** Confirmed, skipped or cancelled: what "Clear finished" takes out of view. */
  finished: number;
  /** Bytes stored (files uploading now have sent more: see `uploading`). */
  sent: number;
  size: number;
  /** Files uploading now, with the bytes stored so far. */
  uploading: { id: number; sent: number }[];
}

/** A page of the queue, oldest first: the signed-in account's files and other accounts'
 * unfinished ones; `matching` rows on all pages; `offset` where this page starts (the last
 * page's start when the rows asked for are gone). */
export interface QueuePage {
  items: QueueItem[];
  matching: number;
  offset: number;
  totals: QueueTotals;
  /** Unfinished files of other accounts on this computer, per account. */
  waitingForOthers: { account: string; files: number }[];
  /** The account's files waiting for a decision: how many, and the first (oldest). */
  conflicts: { count: number; first: Conflict | null };
}

export interface CredentialStatus {
  expiresAt: string | null;
  refreshing: boolean;
  refreshedAt: string | null;
  /** Why the last refresh failed; cleared by the next good one. */
  lastError: ErrorInfo | null;
  /** After a failed refresh: the next try is not before this. */
  retryAt: string | null;
  /** The current grant could not be saved in the keychain (it works from memory). */
  keychainError: ErrorInfo | null;
}

/** A file or folder the user chose in a dialog. The path stays in the backend: the page hands
 * the id back to queue or watch it. */
export interface Picked {
  id: number;
  name: string;
  /** Bytes, for files. */
  size: number | null;
  /** The full path, to show. */
  path: string;
}

export interface SessionStatus {
  user: User | null;
  server: string;
  sessionExpiresAt: string | null;
  online: boolean;
}

export interface FolderItem {
  path: string;
  prefix: string;
  excludes: string[];
  enabled: boolean;
  lastScan: string | null;
  queued: number;
  skipped: number;
  /** Why it cannot be watched now (the engine's code and sentence). */
  error: ErrorInfo | null;
  onConflict: OnConflict;
}

export interface HistoryQuery {
  user?: string;
  status?: "stored" | "confirmed" | "";
  since?: string;
  until?: string;
  q?: string;
  cursor?: string;
  limit?: number;
}

/** One row of history, as the app server sends it (`ferry_protocol::UploadRecord`). */
export interface UploadRecord {
  id: number;
  user: string;
  bucket: string;
  key: string;
  name: string;
  size: number;
  etag: string;
  checksum: string | null;
  device: string | null;
  upload_id: string | null;
  started_at: string;
  completed_at: string;
  status: "stored" | "confirmed";
  confirmed_by: "client" | "store" | "provider";
}

/** The header of the history CSV export, as the app server writes it. */
export const CSV_HEADER = "id,user,bucket,key,name,size,etag,checksum,device,started_at,completed_at,status,confirmed_by";

export interface UploadPage {
  items: UploadRecord[];
  next_cursor: string | null;
}

export interface DayStats {
  day: string;
  user: string;
  count: number;
  bytes: number;
}

export interface Settings {
  files: number;
  partsInFlight: number;
  partSizeMiB: number;
  bandwidthMiBs: number | null;
  startAtLogin: boolean;
  notifications: boolean;
  /** What files added by hand do when their key already holds an object (applied at once). */
  onConflict: OnConflict;
  /** The window's (and the tray's and notifications') language; applied at once. */
  language: Language;
  /** The system's proxy (the environment's), none, or the one named here. */
  proxyMode: "system" | "direct" | "manual";
  /** `http://host:port`, `https://…`, `socks5://…` or `socks5h://…`. */
  proxyUrl: string;
  proxyUser: string;
  /** A PEM file of CA certificates to trust too (a company's TLS inspection). */
  caFile: string | null;
  /** Whether the proxy's password is kept in the keychain (read only; never the password). */
  proxyPasswordSaved?: boolean;
  /** A new password for the proxy, sent only to be kept in the keychain. */
  proxyPassword?: string;
}

/** One step of "Test connection": whether it answered, or why not. */
export interface ConnectionStep {
  ok: boolean;
  error: { code: string; message: string } | null;
}

/** What "Test connection" found: the app server, and (signed in) the store. */
export interface ConnectionReport {
  server: ConnectionStep;
  store: ConnectionStep | null;
}

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
