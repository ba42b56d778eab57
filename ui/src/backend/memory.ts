// A whole Ferry in the page: accounts, a queue that "uploads" on a timer, credentials that
// expire and refresh, history with a few days of rows. For UI tests and for looking at the UI
// in a browser; it behaves like the desktop app as seen through `Backend` — the contract
// scenario (`ui/contract/`) runs on both and expects the same shapes and outcomes.

import { localeOf, type Locale } from "../lib/i18n.svelte";
import {
  BackendError,
  CONFLICT_RULES,
  LANGUAGES,
  CSV_HEADER,
  type Backend,
  type Control,
  type ConnectionReport,
  type CredentialStatus,
  type DayStats,
  type EngineEvent,
  type FolderItem,
  type HistoryQuery,
  type OnConflict,
  type Picked,
  type QueueItem,
  type QueuePage,
  type QueueQuery,
  type SessionStatus,
  type SavedSettings,
  type Settings,
  type SignInRequest,
  type UploadPage,
  type UploadRecord,
  type User,
} from "../backend";
import type { ErrorInfo } from "../generated/events";
import { isLoopback } from "../lib/address";
import { Uploads } from "./uploads";

/** How long the simulated STS takes to hand out new credentials. */
const REFRESH_MS = 1_000;
const MIB = 1024 * 1024;
const ACCOUNTS: Record<string, { password: string; user: User }> = {
  alice: { password: "alice-password", user: { id: 1, name: "alice", role: "user" } },
  admin: { password: "admin-password", user: { id: 2, name: "admin", role: "admin" } },
  bob: { password: "bob-password", user: { id: 3, name: "bob", role: "user" } },
};
/** What the file dialog "chooses". */
const PICKED: Record<string, number> = {
  "/home/alice/report.pdf": 3 * MIB + 12_345,
  "/home/alice/holiday.mp4": 48 * MIB,
};
const FOLDER = "/home/alice/Photos";
const PAGE = { default: 50, max: 500 };
const SESSION_SECS = 12 * 3600;

/** The desktop's rule for server addresses (`src-tauri/src/server_address.rs`). */
/** The token URL of a connection profile's text (TOML or JSON), as the engine reads it. */
export function tokenUrl(profile: string): string {
  let url: unknown;
  if (profile.trim().startsWith("{")) {
    try {
      url = (JSON.parse(profile) as { token_url?: unknown }).token_url;
    } catch (err) {
      throw new BackendError("protocol", `reading the connection profile: ${String(err)}`);
    }
  } else {
    url = /^\s*token_url\s*=\s*"([^"]*)"/m.exec(profile)?.[1];
  }
  if (typeof url !== "string" || !url) {
    throw new BackendError("protocol", "reading the connection profile: missing field `token_url`");
  }
  return url;
}

export function checkServer(server: string, allowInsecure: boolean): string {
  let url: URL;
  try {
    url = new URL(server.trim());
  } catch {
    throw new BackendError("invalid_server", "That is not a server address: give the server as https://host[:port].");
  }
  if (url.username || url.password || url.search || url.hash || !url.hostname) {
    throw new BackendError("invalid_server", "Give the server as https://host[:port].");
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname) && !allowInsecure) {
    throw new BackendError("insecure_server", `${url.hostname} would be reached without encryption (http://).`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new BackendError("invalid_server", "Only https:// (or http:// to this computer) is allowed.");
  }
  return url.href.replace(/\/$/, "");
}

/** Whether a save carries a new proxy password. */
function proxyPasswordGiven(settings: Settings): boolean {
  return typeof settings.proxyPassword === "string" && settings.proxyPassword !== "";
}

/** A CSV field as the app server writes it: quoted when needed, formulas defused. */
function csvField(value: string): string {
  const v = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[,"\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export interface MemoryOptions {
  grantTtlSecs?: number;
  /** What the file dialog chooses: path → size. */
  picked?: Record<string, number>;
  /** Start with a few days of history (default), or none. */
  seedHistory?: boolean;
  /** Simulated throughput per file, bytes per second. */
  rate?: number;
  /** PUTs the store answers with 503 SlowDown, per file name (as the desktop tests' fault
   * proxy does): each is retried, and after five a file's attempt fails and waits for the
   * next one. */
  failingPuts?: Record<string, number>;
  /** Folders the watcher cannot watch (gone): they show the engine's error. */
  unwatchable?: string[];
  /** Scales every retry's wait (1, the default: the engine's backoff). */
  backoffScale?: number;
  /** Refreshes of the storage credentials that fail (the app server out of reach) before
   * one succeeds; each failed one is tried again after 2 s. */
  failingRefreshes?: number;
  tickMs?: number;
  now?: () => number;
}

function seedHistory(now: number): UploadRecord[] {
  const rows: UploadRecord[] = [];
  const names = ["notes.txt", "scan-001.pdf", "photo.jpg", "budget.xlsx", "talk.mp4", "draft.docx"];
  let id = 1;
  for (let day = 6; day >= 1; day--) {
    for (const [i, user] of ["alice", "bob", "alice"].entries()) {
      const name = names[(day + i) % names.length] ?? "file";
      const stored = i === 2 && day % 2 === 0;
      const completed = now - day * 86_400_000 + i * 3_600_000;
      rows.push({
        id: id++,
        user,
        bucket: "ferry",
        key: `uploads/${user === "alice" ? 1 : 3}/${name}`,
        name,
        size: (day * 7 + i * 3) * 100_000,
        etag: `${(day * 977 + i).toString(16)}e7a1c0ffee`,
        checksum: stored ? null : `${(day * 131 + i).toString(16)}c0ffee`,
        device: stored ? null : user === "alice" ? "alice-laptop" : "bob-desktop",
        upload_id: stored ? null : `u-${day}-${i}`,
        started_at: new Date(completed - 2_000).toISOString(),
        completed_at: new Date(completed).toISOString(),
        status: stored ? "stored" : "confirmed",
        confirmed_by: stored ? "store" : "client",
      });
    }
  }
  return rows;
}

export class MemoryBackend implements Backend {
  private listeners = new Set<(event: EngineEvent) => void>();
  private user: User | null = null;
  private failures = 0;
  private server = "http://127.0.0.1:8480";
  /** Signed in through a connection profile: a token server keeps no history. */
  private tokenServer = false;
  private readonly uploads: Uploads;
  private expiresAt: number | null = null;
  private issuedAt = 0;
  private refreshing = false;
  private refreshedAt: number | null = null;
  private failingRefreshes: number;
  private refreshError: ErrorInfo | null = null;
  private refreshRetryAt: number | null = null;
  private folderList: FolderItem[] = [];
  private unwatchable: string[];
  private picks = new Map<number, { path: string; size: number | null }>();
  private nextPick = 1;
  private signedInAt = 0;
  private rows: UploadRecord[];
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly ttl: number;
  private readonly picked: Record<string, number>;
  private readonly rate: number;
  private readonly now: () => number;
  private config: SavedSettings = {
    files: 4,
    partsInFlight: 16,
    partSizeMiB: 8,
    bandwidthMiBs: null,
    startAtLogin: false,
    notifications: true,
    onConflict: "ask",
    language: "system",
    proxyMode: "system",
    proxyUrl: "",
    proxyUser: "",
    caFile: null,
  };
  private proxyPassword: string | null = null;

  constructor(options: MemoryOptions = {}) {
    this.ttl = (options.grantTtlSecs ?? 120) * 1000;
    this.failingRefreshes = options.failingRefreshes ?? 0;
    this.rate = options.rate ?? 12 * MIB;
    this.now = options.now ?? (() => Date.now());
    this.rows = options.seedHistory === false ? [] : seedHistory(this.now());
    this.picked = options.picked ?? PICKED;
    this.unwatchable = options.unwatchable ?? [];
    this.uploads = new Uploads({
      emit: (event) => this.emit(event),
      now: this.now,
      failingPuts: options.failingPuts ?? {},
      backoffScale: options.backoffScale ?? 1,
      confirmed: (item, user, key) => this.confirmed(item, user, key),
      stored: (user, key) => this.rows.some((r) => r.key === `uploads/${user.id}/${key}`),
    });
    this.timer = setInterval(() => this.tick(options.tickMs ?? 100), options.tickMs ?? 100);
  }

  /** Stops the simulation's timer. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private emit(event: EngineEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private signedIn(): User {
    if (!this.user) throw new BackendError("signed_out", "Sign in first.");
    return this.user;
  }

  private grant(): void {
    this.issuedAt = this.now();
    this.expiresAt = this.issuedAt + this.ttl;
    this.refreshedAt = this.issuedAt;
    this.refreshing = false;
    this.refreshError = null;
    this.refreshRetryAt = null;
    this.emit({ type: "credentials_refreshed", expires_at: new Date(this.expiresAt).toISOString() });
  }

  /** A refresh that could not reach the app server, as the engine reports it; tried again in
   * 2 s. */
  private refreshFailed(): void {
    this.failingRefreshes -= 1;
    this.refreshing = false;
    this.refreshError = {
      code: "network",
      message: "could not reach the app server to refresh the storage credentials",
    };
    this.refreshRetryAt = this.now() + 2_000;
    this.emit({ type: "credentials_refresh_failed", error: this.refreshError });
  }

  /** Advances uploads and the credential lifecycle by one tick. */
  tick(ms: number): void {
    if (!this.user) return;
    const now = this.now();
    const due = now >= this.issuedAt + this.ttl / 2 && now >= (this.refreshRetryAt ?? 0);
    if (this.expiresAt !== null && !this.refreshing && due) {
      this.refreshing = true;
      this.emit({ type: "credentials_refreshing" });
      // A second, as a slow STS might take: long enough to be seen (a page test waits for it
      // on a busy machine).
      setTimeout(() => (this.failingRefreshes > 0 ? this.refreshFailed() : this.grant()), REFRESH_MS);
    }
    const limit = this.config.bandwidthMiBs ? (this.config.bandwidthMiBs * MIB) / this.config.files : this.rate;
    this.uploads.tick(this.user, ms, limit, this.config.files);
  }

  /** A confirmed file's history row, as the app server records it. */
  private confirmed(item: QueueItem, user: User, key: string): void {
    const now = this.now();
    this.rows.unshift({
      id: Math.max(0, ...this.rows.map((r) => r.id)) + 1,
      user: user.name,
      bucket: "ferry",
      key: `uploads/${user.id}/${key}`,
      name: item.name,
      size: item.size,
      etag: `${item.id.toString(16)}d41d8cd98f00b204`,
      checksum: `${item.id.toString(16)}0b204d41d8cd98f`,
      device: "this-computer",
      upload_id: `u-${item.id}`,
      started_at: new Date(now - 1_000).toISOString(),
      completed_at: new Date(now).toISOString(),
      status: "confirmed",
      confirmed_by: "client",
    });
  }

  async restore(): Promise<SessionStatus> {
    const until = this.user ? new Date(this.signedInAt + SESSION_SECS * 1000).toISOString() : null;
    return { user: this.user, server: this.server, sessionExpiresAt: until, online: this.user !== null };
  }

  async signIn(request: SignInRequest): Promise<User> {
    const profile = request.connection;
    const server = profile === undefined
      ? checkServer(request.server, request.allowInsecure)
      : checkServer(tokenUrl(profile), false);
    if (server.includes("unreachable")) {
      throw new BackendError("network", `Cannot reach the server at ${request.server}.`);
    }
    if (request.username === "nokeychain" && !request.memoryOnly) {
      throw new BackendError("keychain_unavailable", "No system keychain is available.");
    }
    if (this.failures >= 5) {
      throw new BackendError("rate_limited", "Too many failed sign-ins; try again in 15 minutes.");
    }
    const account = ACCOUNTS[request.username] ?? (request.username === "nokeychain" ? ACCOUNTS.alice : undefined);
    if (!account || (request.username !== "nokeychain" && account.password !== request.password)) {
      this.failures++;
      throw new BackendError("invalid_credentials", "Wrong username or password.");
    }
    this.failures = 0;
    // A new sign-in opens a new engine: uploads in flight stop and are queued again.
    if (this.user) this.uploads.stop(this.user);
    this.server = server;
    this.tokenServer = profile !== undefined;
    this.user = account.user;
    this.signedInAt = this.now();
    this.grant();
    return account.user;
  }

  async signOut(): Promise<void> {
    if (this.user) this.uploads.stop(this.user);
    this.user = null;
    this.expiresAt = null;
    this.refreshedAt = null;
  }

  private remember(path: string, size: number | null): Picked {
    const id = this.nextPick++;
    this.picks.set(id, { path, size });
    return { id, name: path.split("/").pop() ?? path, size, path };
  }

  async enqueue(ids: number[]): Promise<void> {
    this.signedIn();
    const unknown = ids.find((id) => !this.picks.has(id));
    if (unknown !== undefined) {
      throw new BackendError("unknown_pick", `Nothing was picked as ${unknown}: choose the files again.`);
    }
    for (const id of ids) {
      const pick = this.picks.get(id);
      this.picks.delete(id);
      if (!pick) continue;
      const name = pick.path.split("/").pop() ?? pick.path;
      this.uploads.add(this.signedIn(), name, pick.path, pick.size ?? 2 * MIB, this.config.onConflict);
    }
  }

  /** Files dropped on the window: queued here, as the desktop's shell does with an OS drop, and
   * the page is told only that the queue changed. */
  dropFiles(files: { name: string; size: number }[]): void {
    const user = this.user;
    if (!user) return;
    for (const file of files) {
      this.uploads.add(user, file.name, `/home/${user.name}/Desktop/${file.name}`, file.size, this.config.onConflict);
    }
    this.emit({ type: "queue_changed" });
  }

  /** Takes drops on `target` (the window) before the page can, like the desktop window. */
  takeDropsFrom(target: Pick<Window, "addEventListener">): void {
    target.addEventListener("dragover", (e) => e.preventDefault());
    target.addEventListener("drop", (e) => {
      e.preventDefault();
      const files = [...(e.dataTransfer?.files ?? [])].map((f) => ({ name: f.name, size: f.size }));
      if (files.length) this.dropFiles(files);
    });
  }

  async pickFiles(): Promise<Picked[]> {
    return Object.entries(this.picked).map(([path, size]) => this.remember(path, size));
  }

  async pickFolder(): Promise<Picked | null> {
    return this.remember(FOLDER, null);
  }

  async queue(query: QueueQuery = {}): Promise<QueuePage> {
    return this.uploads.page(this.signedIn(), query);
  }

  async clearFinished(): Promise<number> {
    return this.uploads.clearFinished(this.signedIn());
  }

  async control(action: Control, ids: number[] | null): Promise<void> {
    const user = this.signedIn();
    if (!["pause", "resume", "retry", "cancel"].includes(action)) {
      throw new BackendError("invalid_request", `unknown action ${action}`);
    }
    this.uploads.control(user, action, ids);
  }

  async decide(ids: number[] | null, rule: OnConflict): Promise<number> {
    if (!CONFLICT_RULES.includes(rule)) throw new BackendError("invalid_request", `unknown rule ${rule}`);
    return this.uploads.decide(this.signedIn(), ids, rule);
  }

  async credentials(): Promise<CredentialStatus> {
    this.signedIn();
    return {
      expiresAt: this.expiresAt ? new Date(this.expiresAt).toISOString() : null,
      refreshing: this.refreshing,
      refreshedAt: this.refreshedAt ? new Date(this.refreshedAt).toISOString() : null,
      lastError: this.refreshError,
      retryAt: this.refreshRetryAt ? new Date(this.refreshRetryAt).toISOString() : null,
      keychainError: null,
    };
  }

  async folders(): Promise<FolderItem[]> {
    return this.folderList.map((f) => ({ ...f }));
  }

  async addFolder(folder: { pick: number; prefix: string; excludes: string[]; onConflict: OnConflict }): Promise<void> {
    const pick = this.picks.get(folder.pick);
    if (!pick) throw new BackendError("unknown_pick", `Nothing was picked as ${folder.pick}: choose the folder again.`);
    this.picks.delete(folder.pick);
    if (this.folderList.some((f) => f.path === pick.path)) {
      throw new BackendError("duplicate", "That folder is watched already.");
    }
    const { prefix, excludes, onConflict } = folder;
    const error = this.unwatchable.includes(pick.path)
      ? { code: "folder_missing", message: `the folder ${pick.path} does not exist` }
      : null;
    this.folderList.push({ path: pick.path, prefix, excludes, onConflict, enabled: true, lastScan: null, queued: 0, skipped: 0, error });
  }

  async setFolderEnabled(path: string, enabled: boolean): Promise<void> {
    const folder = this.folderList.find((f) => f.path === path);
    if (!folder) throw new BackendError("not_found", "No such watched folder.");
    folder.enabled = enabled;
  }

  async removeFolder(path: string): Promise<void> {
    this.folderList = this.folderList.filter((f) => f.path !== path);
  }

  private filtered(query: HistoryQuery): UploadRecord[] {
    const instant = (value: string, endOfDay: boolean) =>
      /^\d{4}-\d{2}-\d{2}$/.test(value)
        ? Date.parse(`${value}T00:00:00Z`) + (endOfDay ? 86_400_000 : 0)
        : Date.parse(value);
    const me = this.signedIn();
    if (me.role !== "admin" && query.user && query.user !== me.name) {
      throw new BackendError("forbidden", "only admins see other users' uploads");
    }
    return this.rows.filter((row) => {
      if (me.role !== "admin" && row.user !== me.name) return false;
      if (query.user && row.user !== query.user) return false;
      if (query.status && row.status !== query.status) return false;
      if (query.q && !row.key.includes(query.q) && !row.name.includes(query.q)) return false;
      // As the server reads them: a bare date is a UTC day, "until" excludes its instant.
      const done = Date.parse(row.completed_at);
      if (query.since && done < instant(query.since, false)) return false;
      if (query.until && done >= instant(query.until, true)) return false;
      return true;
    });
  }

  async history(query: HistoryQuery): Promise<UploadPage> {
    if (this.tokenServer) {
      throw new BackendError("local_history_only", "this server keeps no upload history; uploads are recorded on this computer only");
    }
    const limit = query.limit ?? PAGE.default;
    if (limit < 1 || limit > PAGE.max) throw new BackendError("invalid_request", `limit goes from 1 to ${PAGE.max}`);
    // Newest first; the cursor is the id of the last row seen, as the server's is.
    const rows = this.filtered(query).filter((r) => !query.cursor || r.id < Number(query.cursor));
    rows.sort((a, b) => b.id - a.id);
    const items = rows.slice(0, limit).map((r) => ({ ...r }));
    const last = items[items.length - 1];
    return { items, next_cursor: rows.length > limit && last ? String(last.id) : null };
  }

  private admin(): void {
    if (this.signedIn().role !== "admin") throw new BackendError("forbidden", "this is for admins only");
  }

  /** The demo has no files to write: it says where the desktop would have saved them. */
  async saveDiagnostics(): Promise<string | null> {
    this.signedIn();
    return "/home/alice/ferry-diagnostics.zip";
  }

  async historyCsv(query: HistoryQuery): Promise<string> {
    this.admin();
    const lines = this.filtered(query).map((r) =>
      [r.id, r.user, r.bucket, r.key, r.name, r.size, r.etag, r.checksum ?? "", r.device ?? "", r.started_at, r.completed_at, r.status, r.confirmed_by]
        .map((f) => csvField(String(f)))
        .join(","),
    );
    return [CSV_HEADER, ...lines].join("\n") + "\n";
  }

  async stats(query: HistoryQuery): Promise<DayStats[]> {
    this.admin();
    const byDay = new Map<string, DayStats>();
    for (const row of this.filtered(query)) {
      const day = row.completed_at.slice(0, 10);
      const key = `${day} ${row.user}`;
      const entry = byDay.get(key) ?? { day, user: row.user, count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += row.size;
      byDay.set(key, entry);
    }
    return [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day));
  }

  /** The language chosen, or the browser's (which stands for the OS's). */
  async locale(): Promise<Locale> {
    if (this.config.language !== "system") return this.config.language;
    return localeOf(typeof navigator === "undefined" ? null : navigator.language);
  }

  async settings(): Promise<Settings> {
    return { ...this.config, proxyPasswordSaved: this.proxyPassword !== null };
  }

  /** The demo's network always answers, but for a proxy at an address with "unreachable". */
  async checkConnection(server?: string): Promise<ConnectionReport> {
    const target = this.user || !server ? this.server : checkServer(server, true);
    const proxy = this.config.proxyMode === "manual" && this.config.proxyUrl.includes("unreachable");
    const step = (operation: string, target: string) =>
      proxy
        ? { ok: false, error: { code: "network", message: `${operation}: cannot reach ${target}: the proxy does not answer` } }
        : { ok: true, error: null };
    return {
      server: step("reaching the app server", target),
      // Signed out there is no grant to reach the storage with.
      store: this.user ? step("reaching the storage", "http://127.0.0.1:8481") : null,
    };
  }

  async saveSettings(settings: Settings): Promise<void> {
    // The desktop's rules (src-tauri/src/settings.rs).
    const whole = (n: unknown, low: number, high: number) =>
      typeof n === "number" && Number.isInteger(n) && n >= low && n <= high;
    if (!whole(settings.files, 1, 16)) throw new BackendError("invalid_settings", "Files at once must be between 1 and 16.");
    if (!whole(settings.partsInFlight, 1, 64)) throw new BackendError("invalid_settings", "Parts in flight must be between 1 and 64.");
    if (!whole(settings.partSizeMiB, 5, 5120)) throw new BackendError("invalid_settings", "Parts must be between 5 MiB and 5 GiB.");
    if (settings.bandwidthMiBs !== null && !whole(settings.bandwidthMiBs, 1, 102_400)) {
      throw new BackendError("invalid_settings", "A bandwidth limit must be between 1 and 102400 MiB/s (leave it empty for none).");
    }
    if (!["system", "direct", "manual"].includes(settings.proxyMode)) {
      throw new BackendError("invalid_settings", "The settings could not be read: proxyMode is not one of system, direct, manual.");
    }
    if (/^[a-z0-9]+:\/\/[^/@]*@/i.test(settings.proxyUrl.trim())) {
      throw new BackendError("invalid_settings", "give the proxy's user name and password in their own fields, not in its address");
    }
    if (proxyPasswordGiven(settings) && !settings.proxyUser.trim()) {
      throw new BackendError("invalid_settings", "A proxy password goes with a user name: give the user name too.");
    }
    if (settings.proxyMode === "manual" && !/^(https?|socks5h?):\/\/[^/\s]+/.test(settings.proxyUrl.trim())) {
      throw new BackendError("invalid_settings", settings.proxyUrl.trim()
        ? `the proxy "${settings.proxyUrl}" is not http://, https://, socks5:// or socks5h://`
        : "Give the proxy's address, as http://host:port or socks5://host:port.");
    }
    if (!LANGUAGES.includes(settings.language)) {
      throw new BackendError("invalid_settings", "The settings could not be read: language is not one of system, en, zh-CN.");
    }
    if (!CONFLICT_RULES.includes(settings.onConflict)) {
      throw new BackendError("invalid_settings", "The settings could not be read: onConflict is not one of ask, skip, overwrite, rename, newer.");
    }
    const { proxyPassword, proxyPasswordSaved: _saved, ...kept } = settings;
    // As the desktop keys it in the keychain: by address and user.
    const moved = kept.proxyUrl.trim() !== this.config.proxyUrl.trim() || kept.proxyUser.trim() !== this.config.proxyUser.trim();
    if (proxyPassword) this.proxyPassword = proxyPassword;
    // A password belongs to its proxy and user: another one forgets it.
    else if (!kept.proxyUser.trim() || moved) this.proxyPassword = null;
    this.config = kept;
  }

  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
