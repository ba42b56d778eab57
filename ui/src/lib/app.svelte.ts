// The UI's state: what the backend said, kept up to date by its events, and a clock for the
// countdowns. Screens read it and call the backend through it.

import type { Backend, CredentialStatus, EngineEvent, QueueItem, SessionStatus } from "../backend";

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
  private stops: (() => void)[] = [];

  constructor(readonly backend: Backend) {}

  async start(): Promise<void> {
    this.stops.push(this.backend.onEvent((event) => this.handle(event)));
    const clock = setInterval(() => (this.now = Date.now()), 250);
    this.stops.push(() => clearInterval(clock));
    this.session = await this.backend.restore();
    if (this.session.user) await this.reload();
  }

  stop(): void {
    for (const stop of this.stops) stop();
  }

  async reload(): Promise<void> {
    this.setQueue(await this.backend.queue());
    this.credentials = await this.backend.credentials();
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
    this.setQueue(await this.backend.queue());
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
    this.session = await this.backend.restore();
    await this.reload();
  }

  async signOut(): Promise<void> {
    await this.backend.signOut();
    this.session = await this.backend.restore();
    this.queue = [];
  }

  handle(event: EngineEvent): void {
    switch (event.type) {
      case "queue_changed":
        void this.backend.queue().then((queue) => this.setQueue(queue));
        break;
      case "progress": {
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) {
          item.sent = event.bytes;
          item.size = event.total || item.size;
          item.rate = event.rate;
          item.etaSecs = event.eta_secs;
        }
        break;
      }
      case "state": {
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) {
          item.state = event.state;
          item.error = event.error;
          if (event.state === "confirmed" || event.state === "uploaded") item.sent = item.size;
        } else {
          void this.reload();
        }
        break;
      }
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
      case "folder_error":
        break;
    }
  }

  /** Bytes sent and total over files that are not cancelled or skipped. */
  get totals(): { sent: number; size: number; active: number; failed: number } {
    let sent = 0;
    let size = 0;
    let active = 0;
    let failed = 0;
    for (const item of this.queue) {
      if (item.state === "cancelled" || item.state === "skipped") continue;
      sent += item.sent;
      size += item.size;
      if (item.state === "uploading" || item.state === "queued") active++;
      if (item.state === "failed") failed++;
    }
    return { sent, size, active, failed };
  }
}
