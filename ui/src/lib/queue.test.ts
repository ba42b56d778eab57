import { describe, expect, it } from "vitest";
import type { QueueItem } from "../backend";
import { detailText, retryIn, rowView, waitingText, type RowView } from "./queue";

/** The words under a row's badge, as one text. */
const text = (detail: RowView["detail"]) => (detail ? detailText(detail) : null);
const now = Date.parse("2026-01-01T00:00:00Z");
const base: QueueItem = {
  id: 1,
  name: "a.bin",
  path: "/home/alice/a.bin",
  size: 100,
  sent: 0,
  rate: 0,
  etaSecs: null,
  state: "queued",
  error: null,
  retryAt: null,
  attempts: 0,
  maxAttempts: 8,
  owner: "alice",
  mine: true,
};
const slowDown = { code: "storage", message: "PutObject: the store answered 503 SlowDown: Please reduce your request rate." };

describe("a queue row", () => {
  it("counts down to a file's next attempt, with the reason and the attempt", () => {
    const item: QueueItem = { ...base, state: "failed", error: slowDown, attempts: 2, retryAt: "2026-01-01T00:00:12Z" };
    const view = rowView(item, undefined, now);
    expect(view.phase).toBe("retrying");
    expect(text(view.detail)).toBe(`Retrying in 12 s — ${slowDown.message} (attempt 2 of 8)`);
    expect(view.actions).toEqual(["retry", "pause", "cancel"]);
    expect(text(rowView(item, undefined, now + 12_500).detail)).toBe(`Retrying now — ${slowDown.message} (attempt 2 of 8)`);
  });

  it("says which request is retried while the file uploads, until progress resumes", () => {
    const item: QueueItem = { ...base, state: "uploading", sent: 40 };
    const note = { operation: "UploadPart", attempt: 3, maxAttempts: 5, code: "network", reason: "network: connection reset" };
    const view = rowView(item, note, now);
    expect(view.phase).toBe("uploading");
    expect(text(view.detail)).toBe("retrying UploadPart: network: connection reset, attempt 3 of 5");
    expect(view.actions).toEqual(["pause", "cancel"]);
    expect(rowView(item, undefined, now).detail).toBeNull();
    // The confirmation's request, retried after the bytes are all in the store.
    const confirming = { operation: "confirming the upload", attempt: 1, maxAttempts: 5, code: "network", reason: "network: connection refused" };
    const uploaded = rowView({ ...item, state: "uploaded", sent: 100 }, confirming, now);
    expect(text(uploaded.detail)).toBe("retrying confirming the upload: network: connection refused, attempt 1 of 5");
  });

  it("shows a file failed for good as failed, with its reason, its attempts and Retry", () => {
    const item: QueueItem = { ...base, state: "failed", error: { code: "file_missing", message: "The file no longer exists." }, attempts: 1 };
    const view = rowView(item, undefined, now);
    expect(view.phase).toBe("failed");
    expect(text(view.detail)).toBe("The file no longer exists. (after 1 attempt)");
    expect(view.actions).toEqual(["retry", "cancel"]);
    const refused = rowView({ ...item, error: slowDown, attempts: 8 }, undefined, now);
    expect(text(refused.detail)).toBe(`${slowDown.message} (after 8 attempts)`);
  });

  it("shows another account's file waiting for its owner, with no actions", () => {
    const theirs: QueueItem = { ...base, state: "failed", error: slowDown, retryAt: "2026-01-01T00:00:12Z", mine: false };
    const view = rowView(theirs, undefined, now);
    expect(view).toEqual({ phase: "waiting", label: "waiting", detail: { before: "Waiting for alice to sign in", said: null, after: null }, actions: [] });
    expect(text(rowView({ ...theirs, owner: null }, undefined, now).detail)).toBe("Waiting for its owner to sign in");
  });

  it("offers only what the engine can do in each state", () => {
    const actions = (state: QueueItem["state"]) => rowView({ ...base, state }, undefined, now).actions;
    expect(actions("queued")).toEqual(["pause", "cancel"]);
    expect(actions("paused")).toEqual(["resume", "cancel"]);
    expect(actions("uploaded")).toEqual([]);
    expect(actions("confirmed")).toEqual([]);
    // A confirmation waiting for its next attempt can be sent now (Retry now), not paused or
    // cancelled: the object is in the store.
    const confirming = rowView({ ...base, state: "uploaded", retryAt: "2026-01-01T00:01:05Z", attempts: 1, error: slowDown }, undefined, now);
    expect(confirming.phase).toBe("retrying");
    expect(text(confirming.detail)).toBe(`Retrying in 1 min 5 s — ${slowDown.message} (attempt 1 of 8)`);
    expect(confirming.actions).toEqual(["retry"]);
  });
});

describe("words", () => {
  it("writes waits in seconds and minutes", () => {
    expect(retryIn(12_000)).toBe("12 s");
    expect(retryIn(11_200)).toBe("12 s");
    expect(retryIn(60_000)).toBe("1 min");
    expect(retryIn(605_000)).toBe("10 min 5 s");
  });

  it("says how many files wait for whom", () => {
    expect(waitingText([])).toBe("");
    expect(waitingText([{ account: "alice", files: 1 }])).toBe("1 file waiting for alice");
    expect(waitingText([{ account: "alice", files: 3 }, { account: "bob at https://files.example.com", files: 2 }])).toBe(
      "3 files waiting for alice · 2 files waiting for bob at https://files.example.com",
    );
  });
});
