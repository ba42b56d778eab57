// How a queue row reads: its phase (the journal's state, or retrying, or waiting for another
// account), the words under it, and the actions the engine would take from there.

import type { Control, FileState, QueueItem } from "../backend";

/** A retry the engine announced for a file (a `retrying` event), shown until it moves on. */
export interface RetryNote {
  /** The request being retried (`PutObject`, `UploadPart`, …). */
  operation: string;
  /** Attempts made so far. */
  attempt: number;
  /** Attempts there will be at most. */
  maxAttempts: number;
  /** Why the last attempt failed. */
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
  /** The words under the badge: why, and what happens next. */
  detail: string | null;
  /** What the user can do with the file, in the order the buttons appear. */
  actions: Control[];
}

/** Files in these states are done with: nothing waits for their owner. */
const FINISHED: FileState[] = ["confirmed", "skipped", "cancelled"];

/** Milliseconds as `12 s`, `1 min 5 s`, `10 min`. */
export function retryIn(ms: number): string {
  const secs = Math.max(0, Math.ceil(ms / 1000));
  if (secs < 60) return `${secs} s`;
  const rest = secs % 60;
  return rest ? `${Math.floor(secs / 60)} min ${rest} s` : `${secs / 60} min`;
}

/** "3 files waiting for alice · 1 file waiting for bob" (empty when nobody waits). */
export function waitingText(waiting: { account: string; files: number }[]): string {
  return waiting
    .map(({ account, files }) => `${files} ${files === 1 ? "file" : "files"} waiting for ${account}`)
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
 * uploading or failed; resume and retry from paused or failed; cancel from all of those). */
function actionsFor(item: QueueItem): Control[] {
  switch (item.state) {
    case "queued":
    case "uploading":
      return ["pause", "cancel"];
    case "paused":
      return ["resume", "cancel"];
    case "failed":
      return retryScheduled(item) ? ["retry", "pause", "cancel"] : ["retry", "cancel"];
    default:
      return [];
  }
}

/** How the row of `item` reads at `now` (ms), given the last retry announced for it. */
export function rowView(item: QueueItem, note: RetryNote | undefined, now: number): RowView {
  if (!item.mine && !FINISHED.includes(item.state)) {
    const owner = item.owner ?? "its owner";
    return { phase: "waiting", label: "waiting", detail: `Waiting for ${owner} to sign in`, actions: [] };
  }
  const actions = item.mine ? actionsFor(item) : [];
  if (retryScheduled(item) && item.retryAt) {
    const left = Date.parse(item.retryAt) - now;
    const when = left > 0 ? `in ${retryIn(left)}` : "now";
    const reason = item.error?.message ?? "the last attempt failed";
    const detail = `Retrying ${when} — ${reason} (attempt ${item.attempts} of ${item.maxAttempts})`;
    return { phase: "retrying", label: "retrying", detail, actions };
  }
  if (note && retryingNow(item, note)) {
    const detail = `retrying ${note.operation}: ${note.reason}, attempt ${note.attempt} of ${note.maxAttempts}`;
    return { phase: "uploading", label: "uploading", detail, actions };
  }
  if (item.mine && item.state === "failed" && item.error?.code === "exists") {
    // Retrying would only ask again: the prompt's answers settle it.
    return { phase: "asking", label: "asking", detail: item.error.message, actions: ["cancel"] };
  }
  const why = item.state === "failed" || item.state === "skipped" ? (item.error?.message ?? null) : null;
  return { phase: item.state, label: item.state, detail: why, actions };
}
