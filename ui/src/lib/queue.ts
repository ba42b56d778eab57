// How a queue row reads: its phase (the journal's state, or retrying, or waiting for another
// account), the words under it, and the actions the engine would take from there.

import type { Control, FileState, QueueItem, Waiting } from "../backend";
import { count } from "./format";
import { text } from "./i18n.svelte";
import type { Said } from "./format";

/** A retry the engine announced for a file (a `retrying` event), shown until it moves on. */
export interface RetryNote {
  /** The request being retried (`PutObject`, `UploadPart`, …). */
  operation: string;
  /** Attempts made so far. */
  attempt: number;
  /** Attempts there will be at most. */
  maxAttempts: number;
  /** Why the last attempt failed: the error's code and the engine's sentence. */
  code: string;
  reason: string;
}

/** What a row shows: the journal's state, or `retrying` (a failed file or a confirmation
 * that will be tried again by itself), or `waiting` (another account's file), or `asking` (an
 * object is already at its key: the user decides, in the prompt above the queue). */
export type Phase = FileState | "retrying" | "waiting" | "asking";

export interface RowView {
  phase: Phase;
  /** The state as the row's badge says it. */
  label: string;
  /** The words under the badge: what happens next (in the window's language) around why (what
   * the backend said, if it said anything). */
  detail: Detail | null;
  /** What the user can do with the file, in the order the buttons appear. */
  actions: Control[];
}

/** The words under a row's badge: `before` and `after` in the window's language, `said` the
 * backend's error between them. */
export interface Detail {
  before: string | null;
  said: Said | null;
  after: string | null;
}

/** A row's words as plain text (the backend's sentence as it said it). */
export function detailText(detail: Detail): string {
  const { before, said, after } = detail;
  return `${before ?? ""}${before && said ? " " : ""}${said?.message ?? ""}${after ?? ""}`;
}

/** Files in these states are done with: nothing waits for their owner. */
const FINISHED: FileState[] = ["confirmed", "skipped", "cancelled"];

/** Milliseconds as `12 s`, `1 min 5 s`, `10 min`. */
export function retryIn(ms: number): string {
  const secs = Math.max(0, Math.ceil(ms / 1000));
  const t = text().time;
  if (secs < 60) return t.seconds(secs);
  const rest = secs % 60;
  return rest ? t.minutesSeconds(Math.floor(secs / 60), rest) : t.minutes(secs / 60);
}

/** "3 files waiting for alice · 1 file waiting for bob" (empty when nobody waits). */
export function waitingText(waiting: Waiting[]): string {
  return waiting
    .map(({ account, files }) => text().uploads.waitingFor(count(files), files, account))
    .join(" · ");
}

/** Whether a request of the file is being retried now (announced, and no progress since). */
export function retryingNow(item: QueueItem, note: RetryNote | undefined): boolean {
  return note !== undefined && (item.state === "uploading" || item.state === "uploaded");
}

/** Whether the file waits for its next attempt by itself (the engine set a time). */
export function retryScheduled(item: QueueItem): boolean {
  return item.retryAt !== null && (item.state === "failed" || item.state === "uploaded");
}

/** The actions the engine takes from `state` (`ferry_engine::transfer`: pause from queued,
 * uploading or failed; resume from paused or failed; retry from failed, and from uploaded while
 * its confirmation waits for its next attempt — sent now; cancel from queued, uploading, paused
 * or failed). */
function actionsFor(item: QueueItem): Control[] {
  switch (item.state) {
    case "queued":
    case "uploading":
      return ["pause", "cancel"];
    case "paused":
      return ["resume", "cancel"];
    case "failed":
      return retryScheduled(item) ? ["retry", "pause", "cancel"] : ["retry", "cancel"];
    case "uploaded":
      return retryScheduled(item) ? ["retry"] : [];
    default:
      return [];
  }
}

/** How the row of `item` reads at `now` (ms), given the last retry announced for it. */
export function rowView(item: QueueItem, note: RetryNote | undefined, now: number): RowView {
  const t = text().row;
  const view = (phase: Phase, detail: Detail | null, actions: Control[]) => ({ phase, label: t.states[phase], detail, actions });
  const only = (said: Said | null) => said && { before: null, said, after: null };
  if (!item.mine && !FINISHED.includes(item.state)) {
    return view("waiting", { before: t.waitingForOwner(item.owner), said: null, after: null }, []);
  }
  const actions = item.mine ? actionsFor(item) : [];
  if (retryScheduled(item) && item.retryAt) {
    const left = Date.parse(item.retryAt) - now;
    const when = left > 0 ? t.retryIn(retryIn(left)) : t.retryNow;
    const after = t.attemptOf(item.attempts, item.maxAttempts);
    // (An attempt failed with no error kept: said in the window's words.)
    const before = item.error ? t.retryingWhen(when) : `${t.retryingWhen(when)} ${t.lastFailed}`;
    return view("retrying", { before, said: item.error, after }, actions);
  }
  if (note && retryingNow(item, note)) {
    // The request's name is the engine's (English), said with its reason.
    const why = { code: note.code, message: `${note.operation}: ${note.reason}` };
    const after = t.requestAttempt(note.attempt, note.maxAttempts);
    return view("uploading", { before: t.retryingRequest, said: why, after }, actions);
  }
  if (item.mine && item.state === "failed" && item.error?.code === "exists") {
    // Retrying would only ask again: the prompt's answers settle it.
    return view("asking", only(item.error), ["cancel"]);
  }
  const why = item.state === "failed" || item.state === "skipped" ? (item.error ?? null) : null;
  // Failed for good: after how many attempts (none for a file that never got one).
  const tried = item.state === "failed" && item.attempts > 0 ? t.afterAttempts(item.attempts) : null;
  return view(item.state, why || tried ? { before: null, said: why, after: tried } : null, actions);
}
