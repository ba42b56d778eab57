// The UI's state: what the backend said, kept up to date by its events, and a clock for the
// countdowns. Screens read it and call the backend through it.

import type { Backend, CredentialStatus, EngineEvent, Overview, QueueItem, SessionStatus } from "../backend";
import { words } from "./format";
import { retryingNow, retryScheduled, type RetryNote } from "./queue";

export type Screen = "uploads" | "folders" | "history" | "settings";

export class AppState {
  session = $state<SessionStatus | null>(null);
  queue = $state<QueueItem[]>([]);
  credentials = $state<CredentialStatus>({
    expiresAt: null,
    refreshing: false,
    refreshedAt: null,
    lastError: null,
    retryAt: null,
    keychainError: null,
  });
  now = $state(Date.now());
  screen = $state<Screen>("uploads");
  sessionExpired = $state(false);
  /** The last retry announced per file id, until the file moves on (progress or a new state). */
  retries = $state<Record<number, RetryNote>>({});
  /** Why the start-up session check failed (the window says so, with a way to try again). */
  startError = $state<string | null>(null);
  /** Something the user asked for that failed, in words, until dismissed. */
  notice = $state<string | null>(null);
  /** Other accounts' unfinished files on this computer. */
  waiting = $state<Overview["waitingForOthers"]>([]);
  private stops: (() => void)[] = [];
  private loading: Promise<void> | null = null;
  /** A state changed since the queue read in flight was asked for: its answer may be older. */
  private stale = false;

  constructor(readonly backend: Backend) {}

  async start(): Promise<void> {
    this.stops.push(this.backend.onEvent((event) => this.handle(event)));
    // Countdowns show seconds: once a second is enough, and nothing while the window is
    // hidden (in the tray) — a window at rest should cost next to no CPU.
    const clock = setInterval(() => {
      if (typeof document === "undefined" || !document.hidden) this.now = Date.now();
    }, 1000);
    this.stops.push(() => clearInterval(clock));
    await this.check();
  }

  /** Asks the backend whether a session is kept; a failure is shown, never a blank window. */
  async check(): Promise<void> {
    this.startError = null;
    try {
      this.session = await this.backend.restore();
      if (this.session.user) await this.reload();
    } catch (err) {
      this.startError = words(err);
    }
  }

  stop(): void {
    for (const stop of this.stops) stop();
  }

  async reload(): Promise<void> {
    await this.loadQueue();
    this.credentials = await this.backend.credentials();
  }

  /** Reads the queue and the overview again. Reads asked for while one is in flight share one
   * more read after it, and an answer is taken only if no state changed while it was on its
   * way — so an older snapshot never undoes a newer event. */
  loadQueue(): Promise<void> {
    this.stale = true;
    this.loading ??= this.readQueue().finally(() => (this.loading = null));
    return this.loading;
  }

  private async readQueue(): Promise<void> {
    // Bounded: under a flood of state changes, take the answer anyway after a few reads and
    // read once more a little later.
    for (let read = 1; this.stale; read++) {
      this.stale = false;
      let queue: QueueItem[];
      let overview: Overview;
      try {
        [queue, overview] = await Promise.all([this.backend.queue(), this.backend.overview()]);
      } catch {
        return; // Signed out meanwhile: there is no queue to show.
      }
      if (this.stale && read < 5) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.setQueue(queue);
      this.waiting = overview.waitingForOthers;
      if (this.stale) setTimeout(() => void this.loadQueue(), 500);
      return;
    }
  }

  /** Asks for files in the system dialog and queues them. */
  async addFiles(): Promise<void> {
    const picked = await this.backend.pickFiles();
    if (picked.length) await this.enqueue(picked.map((p) => p.id));
  }

  /** Asks for a folder in the system dialog and queues everything in it. */
  async addFolder(): Promise<void> {
    const picked = await this.backend.pickFolder();
    if (picked) await this.enqueue([picked.id]);
  }

  private async enqueue(ids: number[]): Promise<void> {
    await this.backend.enqueue(ids);
    await this.loadQueue();
  }

  /** Takes a fresh queue; speed and ETA, which only progress events carry, are kept for files
   * still uploading. */
  private setQueue(items: QueueItem[]): void {
    const before = new Map(this.queue.map((i) => [i.id, i]));
    this.queue = items.map((item) => {
      const old = before.get(item.id);
      if (!old || item.state !== "uploading" || old.state !== "uploading") return item;
      return { ...item, rate: old.rate, etaSecs: old.etaSecs, sent: Math.max(item.sent, old.sent) };
    });
  }

  async signedIn(): Promise<void> {
    this.sessionExpired = false;
    this.retries = {};
    this.session = await this.backend.restore();
    await this.reload();
  }

  /** Signs out; if the backend could not finish (the keychain, the server), says why and
   * shows whatever session is left. */
  async signOut(): Promise<void> {
    try {
      await this.backend.signOut();
    } catch (err) {
      this.notice = words(err);
    }
    this.session = await this.backend.restore();
    this.queue = [];
    this.retries = {};
    this.waiting = [];
  }

  /** Marks a queue read in flight as possibly older than what just happened. */
  private changed(): void {
    if (this.loading) this.stale = true;
  }

  handle(event: EngineEvent): void {
    switch (event.type) {
      case "queue_changed":
        void this.loadQueue();
        break;
      case "progress": {
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) {
          item.sent = event.bytes;
          item.size = event.total || item.size;
          item.rate = event.rate;
          item.etaSecs = event.eta_secs;
        }
        // Bytes move again: whatever was being retried went through.
        delete this.retries[event.file_id];
        break;
      }
      case "state": {
        this.changed();
        delete this.retries[event.file_id];
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) {
          item.state = event.state;
          item.error = event.error;
          // The engine announces a state only when no retry is scheduled.
          item.retryAt = null;
          if (event.state === "confirmed" || event.state === "uploaded") item.sent = item.size;
        } else {
          void this.loadQueue();
        }
        break;
      }
      case "retrying":
        if (event.file_id === null) break;
        this.changed();
        this.retries[event.file_id] = {
          operation: event.operation,
          attempt: event.attempt,
          maxAttempts: event.max_attempts,
          reason: event.error.message,
        };
        // A request retried while the file uploads leaves it uploading; a failed attempt
        // leaves it failed (or uploaded) with a time for the next one: the journal says which.
        void this.loadQueue();
        break;
      case "credentials_refreshing":
        this.credentials.refreshing = true;
        break;
      case "credentials_refreshed":
        this.credentials = {
          expiresAt: event.expires_at,
          refreshing: false,
          refreshedAt: new Date().toISOString(),
          lastError: null,
          retryAt: null,
          keychainError: null,
        };
        break;
      case "credentials_refresh_failed":
        this.credentials.refreshing = false;
        this.credentials.lastError = event.error.message;
        // When the next try comes is the backend's to say.
        void this.backend.credentials().then((c) => (this.credentials = c), () => {});
        break;
      case "credentials_not_saved":
        this.credentials.keychainError = event.error.message;
        break;
      case "session_expired":
        this.sessionExpired = true;
        break;
      case "connection":
        // The status bar says "Offline" while the app server does not answer.
        if (this.session) this.session = { ...this.session, online: event.online && !!this.session.user };
        break;
      case "folder_error":
        break;
    }
  }

  /** Over the signed-in account's files that are not cancelled or skipped: bytes sent and
   * total, files on their way, files being retried, and files failed for good. */
  get totals(): { sent: number; size: number; active: number; retrying: number; failed: number; done: number; files: number } {
    const totals = { sent: 0, size: 0, active: 0, retrying: 0, failed: 0, done: 0, files: 0 };
    for (const item of this.queue) {
      if (!item.mine || item.state === "cancelled" || item.state === "skipped") continue;
      totals.sent += item.sent;
      totals.size += item.size;
      totals.files++;
      if (item.state === "confirmed") totals.done++;
      if (item.state === "uploading" || item.state === "queued") totals.active++;
      if (retryScheduled(item) || retryingNow(item, this.retries[item.id])) totals.retrying++;
      else if (item.state === "failed") totals.failed++;
    }
    return totals;
  }

  /** What screen readers are told of the queue: counts of files, which change as files
   * start, finish or fail — never with each byte sent. */
  get announcement(): string {
    const { files, done, failed, retrying } = this.totals;
    if (files === 0) return "";
    const plural = (n: number) => `${n} file${n === 1 ? "" : "s"}`;
    const trouble = [retrying ? `${retrying} retrying` : "", failed ? `${failed} failed` : ""].filter(Boolean).join(", ");
    if (done === files) return `All ${plural(files)} uploaded.`;
    return `${done} of ${plural(files)} uploaded${trouble ? `; ${trouble}` : ""}.`;
  }
}
