// The UI's state: what the backend said, kept up to date by its events, and a clock for the
// countdowns. Screens read it and call the backend through it.

import {
  noTotals,
  type Backend,
  type CredentialStatus,
  type EngineEvent,
  type FileState,
  type OnConflict,
  type QueueItem,
  type QueuePage,
  type QueueTotals,
  type SessionStatus,
  type Show,
} from "../backend";
import { count, said, type Said } from "./format";
import { setLocale, text } from "./i18n.svelte";
import type { RetryNote } from "./queue";

export type Screen = "uploads" | "folders" | "history" | "settings";

/** Rows a page of the queue shows. */
export const PAGE_ROWS = 100;
/** Reads of the queue that events ask for come at most this often (ms): a queue of small
 * files changes a thousand times a second. What the user asks for is read at once. */
const READ_GAP = 250;
/** Screen readers are told how the queue goes at most this often (ms), at once when a file
 * fails or all are done: a queue of small files finishes hundreds a second. */
const ANNOUNCE_GAP = 10_000;

/** A state the engine told of, on a row: no retry is scheduled then (the engine announces a
 * state only when none is), and a stored file has sent all its bytes. */
function applyState(item: QueueItem, state: FileState, error: QueueItem["error"]): void {
  item.state = state;
  item.error = error;
  item.retryAt = null;
  if (state === "confirmed" || state === "uploaded") item.sent = item.size;
}

/** Which page of the queue the window asks for. */
export interface QueueView {
  show: Show;
  offset: number;
}

export class AppState {
  session = $state<SessionStatus | null>(null);
  /** The rows of the page shown. */
  queue = $state<QueueItem[]>([]);
  /** The page shown; `matching`: rows on all pages of that filter. */
  view = $state<QueueView>({ show: "all", offset: 0 });
  matching = $state(0);
  /** What the live region says (see `announcement`), changed at most every `ANNOUNCE_GAP`. */
  spoken = $state("");
  private spokenAt = 0;
  private spokenFailed = 0;
  private announceTimer: ReturnType<typeof setTimeout> | null = null;
  /** Where the page shown starts (the page asked for is `view`). */
  offset = $state(0);
  /** The account's files counted by the backend over the whole queue. */
  counted = $state<QueueTotals>(noTotals());
  /** Bytes sent of files uploading now, from progress events (the backend's totals count
   * what the store acknowledged). */
  live = $state<Record<number, number>>({});
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
  /** Picked files or folders being added to the queue now (walked and journaled). */
  adding = $state(0);
  /** The last retry announced per file id, until the file moves on (progress or a new state). */
  retries = $state<Record<number, RetryNote>>({});
  /** Why the start-up session check failed (the window says so, with a way to try again). */
  startError = $state<Said | null>(null);
  /** Something the user asked for that failed, in words, until dismissed. */
  notice = $state<Said | null>(null);
  /** Other accounts' unfinished files on this computer. */
  waiting = $state<QueuePage["waitingForOthers"]>([]);
  /** The account's files waiting for a decision about an object at their key. */
  conflicts = $state<QueuePage["conflicts"]>({ count: 0, first: null });
  private stops: (() => void)[] = [];
  /** Reads asked for (one per `loadQueue`) and the newest one answered: a caller waits until
   * a read begun after its call is in. */
  private asked = 0;
  private answered = 0;
  private waiters: { read: number; resolve: () => void }[] = [];
  private reading = false;
  /** An event asked for a read while one was in flight or the window was hidden. */
  private wanted = false;
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private lastRead = 0;
  /** Changes at each sign-in and sign-out: an answer read for another session is dropped. */
  private epoch = 0;
  /** The last state each file was told to be in while a read was in flight: replayed over
   * that read's answer, which may be older. */
  private edits: Map<number, Pick<QueueItem, "state" | "error">> | null = null;

  constructor(readonly backend: Backend) {}

  async start(): Promise<void> {
    this.stops.push(this.backend.onEvent((event) => this.handle(event)));
    // Countdowns show seconds: once a second is enough, and nothing while the window is
    // hidden (in the tray) — a window at rest should cost next to no CPU.
    const clock = setInterval(() => {
      if (typeof document === "undefined" || !document.hidden) this.now = Date.now();
    }, 1000);
    this.stops.push(() => clearInterval(clock));
    this.stops.push(() => this.cancelRead());
    this.stops.push(() => this.announceTimer && clearTimeout(this.announceTimer));
    if (typeof document !== "undefined") {
      // Hidden, the window reads nothing for events; shown again, it catches up once.
      const shown = () => {
        if (!document.hidden && this.wanted) this.readSoon();
      };
      document.addEventListener("visibilitychange", shown);
      this.stops.push(() => document.removeEventListener("visibilitychange", shown));
    }
    await this.check();
  }

  /** Asks the backend whether a session is kept; a failure is shown, never a blank window. */
  async check(): Promise<void> {
    this.startError = null;
    try {
      this.session = await this.backend.restore();
      if (this.session.user) await this.reload();
    } catch (err) {
      this.startError = said(err);
    }
  }

  stop(): void {
    for (const stop of this.stops) stop();
  }

  async reload(): Promise<void> {
    await this.loadQueue();
    this.credentials = await this.backend.credentials();
  }

  /** Reads the page asked for, the totals and the accounts whose files wait, now (after the read in flight,
   * if any); resolves once that read is in. State events that arrive during a read are kept
   * over its answer, so an older snapshot never undoes a newer event. */
  loadQueue(): Promise<void> {
    const read = ++this.asked;
    const done = new Promise<void>((resolve) => this.waiters.push({ read, resolve }));
    void this.pump();
    return done;
  }

  /** A read soon, for events: one at a time, `READ_GAP` after the last one ended, none while
   * the window is hidden. */
  private readSoon(): void {
    const hidden = typeof document !== "undefined" && document.hidden;
    if (hidden || this.reading) {
      this.wanted = true;
      return;
    }
    if (this.readTimer) return;
    this.wanted = false;
    const wait = Math.max(0, this.lastRead + READ_GAP - Date.now());
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      void this.loadQueue();
    }, wait);
  }

  private cancelRead(): void {
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = null;
    this.wanted = false;
  }

  /** Reads until every read asked for is in. Bounded by the calls: events ask through
   * `readSoon`, at most one call per `READ_GAP`. */
  private async pump(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.answered < this.asked) {
        const read = this.asked;
        await this.readOnce();
        this.answered = read;
        this.waiters = this.waiters.filter((w) => {
          if (w.read > read) return true;
          w.resolve();
          return false;
        });
      }
    } finally {
      this.reading = false;
    }
    if (this.wanted) this.readSoon();
  }

  private async readOnce(): Promise<void> {
    const view = { ...this.view };
    const epoch = this.epoch;
    const edits = new Map<number, Pick<QueueItem, "state" | "error">>();
    this.edits = edits;
    let page: QueuePage;
    try {
      page = await this.backend.queue({ ...view, limit: PAGE_ROWS });
    } catch {
      return; // Signed out meanwhile: there is no queue to show.
    } finally {
      this.edits = null;
      this.lastRead = Date.now();
    }
    // Another session, or the user went to another page meanwhile (that page is read next).
    if (epoch !== this.epoch || view.show !== this.view.show || view.offset !== this.view.offset) return;
    this.setPage(page, edits);
    this.waiting = page.waitingForOthers;
    this.conflicts = page.conflicts;
  }

  /** Shows the rows `show` (from the first page). */
  showRows(show: Show): Promise<void> {
    this.view = { show, offset: 0 };
    return this.loadQueue();
  }

  /** Shows the page starting at row `offset`. */
  goTo(offset: number): Promise<void> {
    this.view = { ...this.view, offset: Math.max(0, offset) };
    return this.loadQueue();
  }

  /** Settles the file asked about (or, with `all`, every file waiting and every one still to
   * come that would ask) with `rule`, then reads the queue. */
  async decide(rule: OnConflict, all: boolean): Promise<void> {
    const first = this.conflicts.first;
    if (!first && !all) return;
    await this.backend.decide(all || !first ? null : [first.id], rule);
    await this.loadQueue();
  }

  /** Takes finished files out of the queue's view. */
  async clearFinished(): Promise<void> {
    await this.backend.clearFinished();
    await this.loadQueue();
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
    // A folder of 100 000 files takes seconds to walk and journal: the window says so.
    this.adding++;
    try {
      await this.backend.enqueue(ids);
    } finally {
      this.adding--;
    }
    await this.loadQueue();
  }

  /** Takes a fresh page: events that came while it was read are applied over it, and speed
   * and ETA, which only progress events carry, are kept for files still uploading. */
  private setPage(page: QueuePage, edits: Map<number, Pick<QueueItem, "state" | "error">>): void {
    const before = new Map(this.queue.map((i) => [i.id, i]));
    this.queue = page.items.map((fresh) => {
      const item = { ...fresh };
      const edit = edits.get(item.id);
      if (edit) applyState(item, edit.state, edit.error);
      const old = before.get(item.id);
      if (!old || item.state !== "uploading" || old.state !== "uploading") return item;
      return { ...item, rate: old.rate, etaSecs: old.etaSecs, sent: Math.max(item.sent, old.sent) };
    });
    this.matching = page.matching;
    this.offset = page.offset;
    this.view = { ...this.view, offset: page.offset };
    this.counted = page.totals;
    const uploading = new Set(page.totals.uploading.map((u) => u.id));
    for (const id of Object.keys(this.live).map(Number)) if (!uploading.has(id)) delete this.live[id];
    this.announce();
  }

  /** Tells screen readers the queue's words when they changed: at once when a file failed,
   * all are done or the queue emptied, otherwise not sooner than `ANNOUNCE_GAP` after the last
   * time (then the newest words). */
  private announce(): void {
    if (this.announceTimer) clearTimeout(this.announceTimer);
    this.announceTimer = null;
    const words = this.announcement;
    if (words === this.spoken) return;
    const { failed, done, files } = this.totals;
    const urgent = words === "" || failed !== this.spokenFailed || done === files;
    const wait = this.spokenAt + ANNOUNCE_GAP - Date.now();
    if (urgent || wait <= 0) {
      this.spoken = words;
      this.spokenAt = Date.now();
      this.spokenFailed = failed;
      return;
    }
    this.announceTimer = setTimeout(() => this.announce(), wait);
  }

  /** Speaks the language the backend says (chosen in Settings, or the system's): the
   * window's words, and what screen readers were last told, change at once. */
  async speak(): Promise<void> {
    try {
      setLocale(await this.backend.locale());
    } catch {
      return; // The language stays as it was.
    }
    this.spoken = "";
    this.spokenAt = 0;
    this.announce();
  }

  async signedIn(): Promise<void> {
    this.epoch++;
    this.cancelRead();
    this.sessionExpired = false;
    this.retries = {};
    this.view = { show: "all", offset: 0 };
    this.session = await this.backend.restore();
    await this.reload();
  }

  /** Signs out; if the backend could not finish (the keychain, the server), says why and
   * shows whatever session is left. */
  async signOut(): Promise<void> {
    try {
      await this.backend.signOut();
    } catch (err) {
      this.notice = said(err);
    }
    try {
      this.session = await this.backend.restore();
    } catch (err) {
      // What is left cannot be read now: shown signed out, with why (the first failure told).
      this.notice ??= said(err);
      this.session = this.session && { ...this.session, user: null, sessionExpiresAt: null, online: false };
    }
    this.epoch++;
    this.cancelRead();
    this.queue = [];
    this.counted = noTotals();
    this.matching = 0;
    this.offset = 0;
    this.live = {};
    this.announce();
    this.retries = {};
    this.waiting = [];
    this.conflicts = { count: 0, first: null };
  }

  handle(event: EngineEvent): void {
    switch (event.type) {
      case "queue_changed":
        this.readSoon();
        break;
      case "progress": {
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) {
          item.sent = event.bytes;
          item.size = event.total || item.size;
          item.rate = event.rate;
          item.etaSecs = event.eta_secs;
        }
        this.live[event.file_id] = event.bytes;
        // Bytes move again: whatever was being retried went through.
        delete this.retries[event.file_id];
        break;
      }
      case "state": {
        this.edits?.set(event.file_id, { state: event.state, error: event.error });
        delete this.retries[event.file_id];
        delete this.live[event.file_id];
        const item = this.queue.find((i) => i.id === event.file_id);
        if (item) applyState(item, event.state, event.error);
        // The totals (and a file new to this page) come with the next read.
        this.readSoon();
        break;
      }
      case "retrying":
        if (event.file_id === null) break;
        this.retries[event.file_id] = {
          operation: event.operation,
          attempt: event.attempt,
          maxAttempts: event.max_attempts,
          code: event.error.code,
          reason: event.error.message,
        };
        // A request retried while the file uploads leaves it uploading; a failed attempt
        // leaves it failed (or uploaded) with a time for the next one: the journal says which.
        this.readSoon();
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
        this.credentials.lastError = event.error;
        // When the next try comes is the backend's to say.
        void this.backend.credentials().then((c) => (this.credentials = c), () => {});
        break;
      case "credentials_not_saved":
        this.credentials.keychainError = event.error;
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

  /** Over the signed-in account's files that are not cancelled or skipped (all of them, not
   * only the page shown): bytes sent and total, files on their way, files being retried, files
   * failed for good, and files waiting for a decision about an object at their key. */
  get totals(): {
    sent: number;
    size: number;
    active: number;
    retrying: number;
    failed: number;
    asking: number;
    done: number;
    files: number;
    finished: number;
  } {
    const t = this.counted;
    let sent = t.sent;
    let retryingNow = 0;
    for (const u of t.uploading) {
      sent += Math.max(0, (this.live[u.id] ?? u.sent) - u.sent);
      if (this.retries[u.id]) retryingNow++;
    }
    const { size, active, failed, asking, done, files, finished } = t;
    return { sent, size, active, retrying: t.retrying + retryingNow, failed, asking, done, files, finished };
  }

  /** What screen readers are told of the queue: counts of files, which change as files
   * start, finish or fail — never with each byte sent. */
  get announcement(): string {
    const { files, done, failed, asking, retrying } = this.totals;
    if (files === 0) return "";
    const t = text().announce;
    if (done === files) return t.allDone(count(files), files);
    const trouble = [
      retrying ? t.retrying(count(retrying)) : "",
      failed ? t.failed(count(failed)) : "",
      asking ? t.asking(count(asking)) : "",
    ].filter(Boolean);
    const said = t.done(count(done), count(files), files);
    return `${said}${trouble.length ? `${t.then}${trouble.join(t.and)}` : ""}${t.end}`;
  }
}
