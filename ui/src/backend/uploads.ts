// The in-memory backend's queue: files that "upload" on a timer the way the engine uploads
// them (`ferry_engine::transfer`), as the desktop shows them. Each file belongs to the account
// that added it; only the signed-in account's files move, the others wait for their owner.
// PUTs can be made to fail (503 SlowDown, as the desktop tests' fault proxy answers): each
// failed request is retried up to five times with announced backoff, then the file's attempt
// fails and its next one is scheduled, up to eight — as the engine does.

import {
  BackendError,
  noTotals,
  type Control,
  type EngineEvent,
  type FileState,
  type OnConflict,
  type QueueItem,
  type QueuePage,
  type QueueQuery,
  type QueueTotals,
  type Show,
  type User,
} from "../backend";

/** Attempts per request (`ferry_engine::retry::ATTEMPTS`). */
const REQUEST_ATTEMPTS = 5;
/** Failed attempts after which a file waits for the user (`TransferSettings::max_attempts`). */
export const MAX_ATTEMPTS = 8;
const FINISHED: FileState[] = ["confirmed", "skipped", "cancelled"];
const SLOW_DOWN = {
  code: "storage",
  message: "PutObject: the store answered 503 SlowDown: Please reduce your request rate.",
};

interface Item extends QueueItem {
  ownerId: number;
  /** PUTs of this file the store will still refuse. */
  failingPuts: number;
  /** Failed tries of the current request. */
  requestAttempt: number;
  /** A request retry waits until then (ms). */
  waitUntil: number;
  /** Taken out of the queue's view by "Clear finished". */
  cleared: boolean;
  /** Its key below the account's prefix (its name, or a numbered copy's). */
  key: string;
  /** What it does when its key holds an object. */
  rule: OnConflict;
}

/** `name (n).ext`, as the engine numbers a copy kept beside an object (`conflict::numbered`). */
export function numbered(key: string, n: number): string {
  const slash = key.lastIndexOf("/");
  const dir = key.slice(0, slash + 1);
  const name = key.slice(slash + 1);
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  return `${dir}${stem} (${n})${ext}`;
}

/** Rows a page holds unless asked, and at most (`ferry_engine::journal::PAGE_MOST`). */
const PAGE_DEFAULT = 100;
const PAGE_MOST = 500;
const SHOWS: Record<Show, true> = { all: true, unfinished: true, failed: true, finished: true };

export interface UploadsOptions {
  emit: (event: EngineEvent) => void;
  now: () => number;
  /** PUTs answered 503, per file name. */
  failingPuts: Record<string, number>;
  /** Scales every backoff (1: the engine's). */
  backoffScale: number;
  /** A file of the signed-in account was confirmed at `key`. */
  confirmed: (item: QueueItem, user: User, key: string) => void;
  /** Whether the store holds an object at `key` of `user`'s prefix. */
  stored: (user: User, key: string) => boolean;
}

export class Uploads {
  private items: Item[] = [];
  private nextId = 1;

  constructor(private readonly options: UploadsOptions) {}

  private emitState(item: Item, error: QueueItem["error"] = null): void {
    this.options.emit({ type: "state", file_id: item.id, state: item.state, error });
  }

  /** Adds a file for `user`; `.part` files are skipped, as the engine's default excludes. */
  add(user: User, name: string, path: string, size: number, rule: OnConflict): void {
    const item: Item = {
      id: this.nextId++,
      name,
      path,
      size,
      sent: 0,
      rate: 0,
      etaSecs: null,
      state: "queued",
      error: null,
      retryAt: null,
      attempts: 0,
      maxAttempts: MAX_ATTEMPTS,
      owner: user.name,
      mine: true,
      ownerId: user.id,
      failingPuts: this.options.failingPuts[name] ?? 0,
      requestAttempt: 0,
      waitUntil: 0,
      cleared: false,
      key: name,
      rule,
    };
    if (name.endsWith(".part")) {
      item.state = "skipped";
      item.error = { code: "excluded", message: "Partial downloads are left out." };
    }
    this.items.push(item);
  }

  /** Like the journal as the desktop reads it: a page of `user`'s files in view and other
   * accounts' unfinished ones, oldest first, and the totals over all of `user`'s; speed and
   * ETA arrive only as progress events. */
  page(user: User, query: QueueQuery): QueuePage {
    const show = query.show ?? "all";
    const limit = query.limit ?? PAGE_DEFAULT;
    if (!Object.hasOwn(SHOWS, show)) throw new BackendError("invalid_request", `show is all, unfinished, failed or finished, not "${show}"`);
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= PAGE_MOST)) throw new BackendError("invalid_request", `limit goes from 1 to ${PAGE_MOST}`);
    if (query.offset !== undefined && !(Number.isInteger(query.offset) && query.offset >= 0)) {
      throw new BackendError("invalid_request", "offset is a row number from 0");
    }
    // As the journal lists them (`journal::listing`): unfinished rows in upload order (other
    // accounts' too), then the account's finished rows newest first.
    const shown = this.items.filter((i) => !i.cleared);
    const unfinished = shown.filter((i) => !FINISHED.includes(i.state));
    const mine = shown.filter((i) => i.ownerId === user.id);
    const finished = mine.filter((i) => FINISHED.includes(i.state)).reverse();
    const matching = {
      all: [...unfinished, ...finished],
      unfinished,
      failed: mine.filter((i) => i.state === "failed"),
      finished,
    }[show];
    let offset = query.offset ?? 0;
    if (offset >= matching.length) offset = Math.floor(Math.max(0, matching.length - 1) / limit) * limit;
    const items = matching
      .slice(offset, offset + limit)
      .map(({ ownerId, failingPuts: _f, requestAttempt: _r, waitUntil: _w, cleared: _c, key: _k, rule: _u, ...item }) => ({
        ...item,
        rate: 0,
        etaSecs: null,
        mine: ownerId === user.id,
      }));
    const asking = this.asking(user);
    const first = asking[0];
    return {
      items,
      matching: matching.length,
      offset,
      totals: this.totals(user),
      waitingForOthers: this.waiting(user),
      conflicts: {
        count: asking.length,
        first: first ? { id: first.id, name: first.name, path: first.path, key: first.key } : null,
      },
    };
  }

  /** `user`'s files waiting for a decision about an object at their key, oldest first. */
  private asking(user: User): Item[] {
    return this.items.filter((i) => i.ownerId === user.id && i.state === "failed" && i.error?.code === "exists");
  }

  /** As `Engine::decide`: the waiting files of `ids` (or all, and every unfinished file that
   * would ask) take `rule` and are queued again; how many. */
  decide(user: User, ids: number[] | null, rule: OnConflict): number {
    const theirs = this.items.find((i) => ids?.includes(i.id) && i.ownerId !== user.id);
    if (theirs) {
      throw new BackendError("forbidden", `${theirs.name} belongs to ${theirs.owner}: it waits for them to sign in.`);
    }
    const waiting = this.asking(user).filter((i) => !ids || ids.includes(i.id));
    if (!ids) {
      for (const item of this.items) {
        if (item.ownerId === user.id && item.rule === "ask" && !FINISHED.includes(item.state)) item.rule = rule;
      }
    }
    if (rule === "ask") return 0;
    for (const item of waiting) {
      item.rule = rule;
      item.state = "queued";
      item.error = null;
      item.attempts = 0;
      this.emitState(item);
    }
    return waiting.length;
  }

  private totals(user: User): QueueTotals {
    const totals = noTotals();
    for (const item of this.items) {
      if (item.ownerId !== user.id || item.cleared) continue;
      const scheduled = item.retryAt !== null && (item.state === "failed" || item.state === "uploaded");
      if (FINISHED.includes(item.state)) totals.finished++;
      if (item.state === "skipped" || item.state === "cancelled") continue;
      totals.files++;
      totals.size += item.size;
      const stored = item.state === "uploaded" || item.state === "confirmed";
      // The journal holds whole parts; this simulation has none, so nothing until stored.
      totals.sent += stored ? item.size : 0;
      if (item.state === "confirmed") totals.done++;
      if (item.state === "paused") totals.paused++;
      if (scheduled) totals.retrying++;
      else if (item.state === "failed" && item.error?.code === "exists") totals.asking++;
      else if (item.state === "failed") totals.failed++;
      else if (["queued", "uploading", "uploaded"].includes(item.state)) totals.active++;
      if (item.state === "uploading") totals.uploading.push({ id: item.id, sent: 0 });
    }
    return totals;
  }

  /** Takes `user`'s finished files out of view; how many. */
  clearFinished(user: User): number {
    let cleared = 0;
    for (const item of this.items) {
      if (item.ownerId !== user.id || item.cleared || !FINISHED.includes(item.state)) continue;
      item.cleared = true;
      cleared++;
    }
    return cleared;
  }

  private waiting(user: User): QueuePage["waitingForOthers"] {
    const waiting = new Map<string, number>();
    for (const item of this.items) {
      if (item.ownerId === user.id || FINISHED.includes(item.state) || !item.owner) continue;
      waiting.set(item.owner, (waiting.get(item.owner) ?? 0) + 1);
    }
    return [...waiting].map(([account, files]) => ({ account, files }));
  }

  /** The engine's transitions (`ferry_engine::transfer`), on `user`'s files only; retry takes
   * failed files only (paused ones stay paused). Pausing and cancelling keep the last error,
   * resuming clears it. */
  control(user: User, action: Control, ids: number[] | null): void {
    const theirs = this.items.find((i) => ids?.includes(i.id) && i.ownerId !== user.id);
    if (theirs) {
      throw new BackendError("forbidden", `${theirs.name} belongs to ${theirs.owner}: it waits for them to sign in.`);
    }
    const from: Record<Control, FileState[]> = {
      pause: ["queued", "uploading", "failed"],
      resume: ["paused", "failed"],
      retry: ["failed"],
      cancel: ["queued", "uploading", "paused", "failed"],
    };
    const to: Record<Control, FileState> = { pause: "paused", resume: "queued", retry: "queued", cancel: "cancelled" };
    for (const item of this.items) {
      if (item.ownerId !== user.id || (ids && !ids.includes(item.id))) continue;
      if (action === "retry" && item.state === "uploaded" && item.retryAt !== null) {
        // Its confirmation, waiting for its next attempt, is sent now.
        item.retryAt = null;
        item.attempts = 0;
        this.emitState(item);
        continue;
      }
      if (!from[action].includes(item.state)) continue;
      item.state = to[action];
      item.retryAt = null;
      if (item.state === "queued") item.error = null;
      this.emitState(item);
    }
  }

  /** Signing out stops `user`'s uploads; the next sign-in finds them queued again, as the
   * engine re-queues files it was uploading when it stopped. */
  stop(user: User): void {
    for (const item of this.items) {
      if (item.ownerId !== user.id || item.state !== "uploading") continue;
      item.state = "queued";
      item.requestAttempt = 0;
      item.waitUntil = 0;
    }
  }

  /** Advances `user`'s uploads by `ms` at `rate` bytes per second per file, `slots` at once. */
  tick(user: User, ms: number, rate: number, slots: number): void {
    const now = this.options.now();
    const mine = this.items.filter((i) => i.ownerId === user.id);
    let active = mine.filter((i) => i.state === "uploading").length;
    for (const item of mine) {
      const due = item.state === "failed" && item.retryAt !== null && Date.parse(item.retryAt) <= now;
      if ((item.state === "queued" || due) && active < slots) {
        if (this.start(item, user)) active++;
        continue;
      }
      if (item.state === "uploaded") {
        item.state = "confirmed";
        this.options.confirmed(item, user, item.key);
        this.emitState(item);
        continue;
      }
      if (item.state === "uploading" && item.waitUntil <= now) this.send(item, ms, rate, now);
    }
  }

  /** Starts an attempt; `false` when the file is gone before its turn (`missing.txt`, as a
   * file deleted after it was queued: failed for good). */
  private start(item: Item, user: User): boolean {
    if (!this.settle(item, user)) return false;
    if (item.name === "missing.txt") {
      item.state = "failed";
      item.attempts++;
      item.error = { code: "file_missing", message: "The file no longer exists." };
      this.emitState(item, item.error);
      return false;
    }
    item.state = "uploading";
    item.error = null;
    item.retryAt = null;
    item.requestAttempt = 0;
    this.emitState(item);
    return true;
  }

  /** Applies the file's rule when its key holds an object (`conflict::settle`); `false` when
   * the file does not go (it waits for a decision, or is skipped). The simulation's files are
   * always newer than what the store holds. */
  private settle(item: Item, user: User): boolean {
    if (item.rule === "overwrite" || item.rule === "newer" || !this.options.stored(user, item.key)) return true;
    if (item.rule === "rename") {
      const n = [...Array(99).keys()].map((i) => i + 1).find((i) => !this.options.stored(user, numbered(item.key, i)));
      if (n !== undefined) {
        item.key = numbered(item.key, n);
        return true;
      }
      item.state = "failed";
      item.attempts++;
      item.error = { code: "no_free_name", message: `${item.key} and 99 numbered copies are already at the store` };
      this.emitState(item, item.error);
      return false;
    }
    const message = `${item.key} is already at the store; choose to overwrite it, keep both (upload under another name) or skip the file`;
    if (item.rule === "skip") {
      item.state = "skipped";
      item.error = { code: "exists", message: `${item.key} is already at the store; skipped, as asked` };
    } else {
      item.state = "failed";
      item.attempts++;
      item.retryAt = null;
      item.error = { code: "exists", message };
    }
    this.emitState(item, item.error);
    return false;
  }

  /** One tick of sending: a refused PUT is retried or fails the attempt; otherwise bytes go. */
  private send(item: Item, ms: number, rate: number, now: number): void {
    if (item.failingPuts > 0) {
      item.failingPuts--;
      item.requestAttempt++;
      if (item.requestAttempt < REQUEST_ATTEMPTS) {
        const wait = 250 * 2 ** (item.requestAttempt - 1) * this.options.backoffScale;
        item.waitUntil = now + wait;
        this.retrying(item, "PutObject", item.requestAttempt, REQUEST_ATTEMPTS, wait);
      } else {
        this.attemptFailed(item, now);
      }
      return;
    }
    item.sent = Math.min(item.size, item.sent + (rate * ms) / 1000);
    item.rate = rate;
    item.etaSecs = Math.ceil((item.size - item.sent) / rate);
    const progress = { file_id: item.id, bytes: item.sent, total: item.size, rate, eta_secs: item.etaSecs };
    this.options.emit({ type: "progress", ...progress });
    if (item.sent >= item.size) {
      item.state = "uploaded";
      this.emitState(item);
    }
  }

  /** The file's attempt failed: its next one is scheduled (`file_backoff`: 2 s doubled per
   * attempt) and announced, or after the last one it fails for good. */
  private attemptFailed(item: Item, now: number): void {
    item.attempts++;
    item.state = "failed";
    item.error = SLOW_DOWN;
    item.requestAttempt = 0;
    if (item.attempts >= item.maxAttempts) {
      item.retryAt = null;
      this.emitState(item, item.error);
      return;
    }
    const wait = Math.min(2000 * 2 ** (item.attempts - 1), 600_000) * this.options.backoffScale;
    item.retryAt = new Date(now + wait).toISOString();
    this.retrying(item, "uploading the file", item.attempts, item.maxAttempts, wait);
  }

  private retrying(item: Item, operation: string, attempt: number, max: number, wait: number): void {
    this.options.emit({
      type: "retrying",
      file_id: item.id,
      operation,
      attempt,
      max_attempts: max,
      error: SLOW_DOWN,
      retry_in_ms: Math.round(wait),
    });
  }
}
