// A whole Ferry in the page: accounts, a queue that "uploads" on a timer, credentials that
// expire and refresh, history with a few days of rows. For UI tests and for looking at the UI
// in a browser; it behaves like the engine as seen through `Backend`.

import {
  BackendError,
  type Backend,
  type Control,
  type CredentialStatus,
  type DayStats,
  type EngineEvent,
  type FolderItem,
  type HistoryQuery,
  type QueueItem,
  type SessionStatus,
  type Settings,
  type SignInRequest,
  type UploadPage,
  type UploadRecord,
  type User,
} from "../backend";

const MIB = 1024 * 1024;
const ACCOUNTS: Record<string, { password: string; user: User }> = {
  alice: { password: "alice-password", user: { id: 1, name: "alice", role: "user" } },
  admin: { password: "admin-password", user: { id: 2, name: "admin", role: "admin" } },
};
const PICKED: Record<string, number> = {
  "/home/alice/report.pdf": 3 * MIB + 12_345,
  "/home/alice/holiday.mp4": 48 * MIB,
};

export interface MemoryOptions {
  grantTtlSecs?: number;
  /** Simulated throughput per file, bytes per second. */
  rate?: number;
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
      rows.push({
        id: id++,
        user,
        key: `uploads/${user === "alice" ? 1 : 3}/${name}`,
        name,
        size: (day * 7 + i * 3) * 100_000,
        etag: `${(day * 977 + i).toString(16)}e7a1c0ffee`,
        device: user === "alice" ? "alice-laptop" : "bob-desktop",
        completed_at: new Date(now - day * 86_400_000 + i * 3_600_000).toISOString(),
        status: i === 2 && day % 2 === 0 ? "stored" : "confirmed",
        confirmed_by: i === 2 && day % 2 === 0 ? "store" : "client",
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
  private items: QueueItem[] = [];
  private nextId = 1;
  private expiresAt: number | null = null;
  private issuedAt = 0;
  private refreshing = false;
  private refreshedAt: number | null = null;
  private folderList: FolderItem[] = [];
  private rows: UploadRecord[];
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly ttl: number;
  private readonly rate: number;
  private readonly now: () => number;
  private config: Settings = {
    files: 4,
    partsInFlight: 4,
    partSizeMiB: 8,
    bandwidthMiBs: null,
    startAtLogin: false,
    notifications: true,
  };

  constructor(options: MemoryOptions = {}) {
    this.ttl = (options.grantTtlSecs ?? 120) * 1000;
    this.rate = options.rate ?? 12 * MIB;
    this.now = options.now ?? (() => Date.now());
    this.rows = seedHistory(this.now());
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
    this.emit({ type: "credentials_refreshed", expires_at: new Date(this.expiresAt).toISOString() });
  }

  /** Advances uploads and the credential lifecycle by one tick. */
  tick(ms: number): void {
    if (!this.user) return;
    const now = this.now();
    if (this.expiresAt !== null && !this.refreshing && now >= this.issuedAt + this.ttl / 2) {
      this.refreshing = true;
      this.emit({ type: "credentials_refreshing" });
      setTimeout(() => this.grant(), 300);
    }
    const limit = this.config.bandwidthMiBs ? (this.config.bandwidthMiBs * MIB) / this.config.files : this.rate;
    let active = this.items.filter((i) => i.state === "uploading").length;
    for (const item of this.items) {
      if (item.state === "queued" && active < this.config.files) {
        item.state = "uploading";
        active++;
        this.emit({ type: "state", file_id: item.id, state: "uploading", error: null });
      }
      if (item.state === "uploaded") {
        item.state = "confirmed";
        this.rows.unshift({
          id: this.rows.length + 1,
          user: this.user.name,
          key: `uploads/${this.user.id}/${item.name}`,
          name: item.name,
          size: item.size,
          etag: `${item.id.toString(16)}d41d8cd98f00b204`,
          device: "this-computer",
          completed_at: new Date(now).toISOString(),
          status: "confirmed",
          confirmed_by: "client",
        });
        this.emit({ type: "state", file_id: item.id, state: "confirmed", error: null });
        continue;
      }
      if (item.state !== "uploading") continue;
      item.sent = Math.min(item.size, item.sent + (limit * ms) / 1000);
      item.rate = limit;
      item.etaSecs = Math.ceil((item.size - item.sent) / limit);
      this.emit({ type: "progress", file_id: item.id, bytes: item.sent, total: item.size, rate: limit, eta_secs: item.etaSecs });
      if (item.sent >= item.size) {
        item.state = "uploaded";
        this.emit({ type: "state", file_id: item.id, state: "uploaded", error: null });
      }
    }
  }

  async restore(): Promise<SessionStatus> {
    return { user: this.user, server: this.server, sessionExpiresAt: null, online: true };
  }

  async signIn(request: SignInRequest): Promise<User> {
    if (!/^https?:\/\/[^/]+/.test(request.server)) {
      throw new BackendError("network", `Cannot reach the server at ${request.server}.`);
    }
    if (request.server.includes("unreachable")) {
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
    this.server = request.server;
    this.user = account.user;
    this.grant();
    return account.user;
  }

  async signOut(): Promise<void> {
    this.user = null;
    this.expiresAt = null;
  }

  private add(name: string, path: string, size: number): void {
    const item: QueueItem = { id: this.nextId++, name, path, size, sent: 0, rate: 0, etaSecs: null, state: "queued", error: null };
    if (name.endsWith(".part")) {
      item.state = "skipped";
      item.error = { code: "excluded", message: "Partial downloads are left out." };
    }
    this.items.push(item);
    this.emit({ type: "queued", item: { ...item } });
  }

  async enqueuePaths(paths: string[]): Promise<void> {
    this.signedIn();
    for (const path of paths) {
      const name = path.split("/").pop() ?? path;
      if (name === "missing.txt") {
        this.add(name, path, 0);
        const item = this.items[this.items.length - 1];
        if (item) {
          item.state = "failed";
          item.error = { code: "file_missing", message: "The file no longer exists." };
          this.emit({ type: "state", file_id: item.id, state: "failed", error: item.error });
        }
        continue;
      }
      this.add(name, path, PICKED[path] ?? 2 * MIB);
    }
  }

  async enqueueFiles(files: { name: string; size: number }[]): Promise<void> {
    this.signedIn();
    for (const file of files) this.add(file.name, file.name, file.size);
  }

  async pickFiles(): Promise<string[]> {
    return Object.keys(PICKED);
  }

  async pickFolder(): Promise<string | null> {
    return "/home/alice/Photos";
  }

  async queue(): Promise<QueueItem[]> {
    return this.items.map((i) => ({ ...i }));
  }

  async control(action: Control, ids: number[] | null): Promise<void> {
    for (const item of this.items) {
      if (ids && !ids.includes(item.id)) continue;
      const before = item.state;
      if (action === "pause" && ["queued", "uploading"].includes(before)) item.state = "paused";
      if (action === "resume" && before === "paused") item.state = "queued";
      if (action === "retry" && before === "failed") {
        item.state = "queued";
        item.error = null;
      }
      if (action === "cancel" && !["confirmed", "cancelled", "skipped"].includes(before)) item.state = "cancelled";
      if (item.state !== before) this.emit({ type: "state", file_id: item.id, state: item.state, error: item.error });
    }
  }

  async credentials(): Promise<CredentialStatus> {
    return {
      expiresAt: this.expiresAt ? new Date(this.expiresAt).toISOString() : null,
      refreshing: this.refreshing,
      refreshedAt: this.refreshedAt ? new Date(this.refreshedAt).toISOString() : null,
      lastError: null,
    };
  }

  async folders(): Promise<FolderItem[]> {
    return this.folderList.map((f) => ({ ...f }));
  }

  async addFolder(folder: { path: string; prefix: string; excludes: string[] }): Promise<void> {
    this.signedIn();
    if (this.folderList.some((f) => f.path === folder.path)) {
      throw new BackendError("duplicate", "That folder is watched already.");
    }
    this.folderList.push({ ...folder, enabled: true, lastScan: new Date(this.now()).toISOString(), queued: 0, skipped: 0, error: null });
  }

  async setFolderEnabled(path: string, enabled: boolean): Promise<void> {
    const folder = this.folderList.find((f) => f.path === path);
    if (folder) folder.enabled = enabled;
  }

  async removeFolder(path: string): Promise<void> {
    this.folderList = this.folderList.filter((f) => f.path !== path);
  }

  private filtered(query: HistoryQuery): UploadRecord[] {
    const me = this.signedIn();
    return this.rows.filter((row) => {
      if (me.role !== "admin" && row.user !== me.name) return false;
      if (query.user && row.user !== query.user) return false;
      if (query.status && row.status !== query.status) return false;
      if (query.q && !row.key.includes(query.q) && !row.name.includes(query.q)) return false;
      if (query.since && row.completed_at < query.since) return false;
      if (query.until && row.completed_at.slice(0, 10) > query.until) return false;
      return true;
    });
  }

  async history(query: HistoryQuery): Promise<UploadPage> {
    const rows = this.filtered(query);
    const start = query.cursor ? Number(query.cursor) : 0;
    const limit = query.limit ?? 10;
    const items = rows.slice(start, start + limit);
    return { items, next_cursor: start + limit < rows.length ? String(start + limit) : null };
  }

  async historyCsv(query: HistoryQuery): Promise<string> {
    if (this.signedIn().role !== "admin") throw new BackendError("forbidden", "This is for admins only.");
    const lines = this.filtered(query).map((r) => [r.id, r.user, r.key, r.size, r.etag, r.completed_at, r.status].join(","));
    return ["id,user,key,size,etag,completed_at,status", ...lines].join("\n") + "\n";
  }

  async stats(query: HistoryQuery): Promise<DayStats[]> {
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

  async settings(): Promise<Settings> {
    return { ...this.config };
  }

  async saveSettings(settings: Settings): Promise<void> {
    if (settings.files < 1 || settings.partsInFlight < 1 || settings.partSizeMiB < 5) {
      throw new BackendError("invalid_settings", "Parts must be at least 5 MiB and limits at least 1.");
    }
    this.config = { ...settings };
  }

  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
