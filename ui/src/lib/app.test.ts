import { afterEach, describe, expect, it } from "vitest";
import { BackendError, CSV_HEADER } from "../backend";
import { MemoryBackend } from "../backend/memory";
import { AppState, PAGE_ROWS } from "./app.svelte";

const backends: MemoryBackend[] = [];
function backend(options = {}) {
  const b = new MemoryBackend({ tickMs: 20, rate: 50 * 1024 * 1024, ...options });
  backends.push(b);
  return b;
}
afterEach(() => {
  for (const b of backends.splice(0)) b.close();
});

async function until(check: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const signIn = {
  server: "http://127.0.0.1:8480",
  username: "alice",
  password: "alice-password",
  remember: true,
  memoryOnly: false,
  allowInsecure: false,
};

/** Counts the queue reads `b` answers from now on. */
function countReads(b: MemoryBackend): { n: number } {
  const reads = { n: 0 };
  const read = b.queue.bind(b);
  b.queue = async (query) => {
    reads.n++;
    return read(query);
  };
  return reads;
}

/** An app started on `b` with alice signed in. */
async function signedInApp(b: MemoryBackend): Promise<AppState> {
  const app = new AppState(b);
  await app.start();
  await app.backend.signIn(signIn);
  await app.signedIn();
  return app;
}

describe("AppState over the memory backend", () => {
  it("says when the start-up session check fails, and checks again on request", async () => {
    const b = backend();
    const restore = b.restore.bind(b);
    let broken = true;
    b.restore = async () => {
      if (broken) throw new BackendError("keychain_unavailable", "The keychain is locked.");
      return restore();
    };
    const app = new AppState(b);
    await app.start();
    expect(app.startError?.message).toBe("The keychain is locked.");
    expect(app.session).toBeNull();
    broken = false;
    await app.check();
    expect(app.startError).toBeNull();
    expect(app.session?.user).toBeNull();
    app.stop();
  });

  it("says offline while the app server does not answer, and connected when it does again", async () => {
    const b = backend();
    const app = await signedInApp(b);
    expect(app.session?.online).toBe(true);
    app.handle({ type: "connection", online: false });
    expect(app.session?.online).toBe(false);
    app.handle({ type: "connection", online: true });
    expect(app.session?.online).toBe(true);
    app.stop();
  });

  it("signs out even when the backend fails to, and says why", async () => {
    const b = backend();
    const app = await signedInApp(b);
    b.signOut = async () => {
      throw new BackendError("keychain_unavailable", "The keychain did not answer.");
    };
    await app.signOut();
    expect(app.notice?.message).toBe("The keychain did not answer.");
    app.stop();
  });

  it("shows itself signed out, and why, when the session cannot be read after signing out", async () => {
    const b = backend();
    const app = await signedInApp(b);
    b.restore = async () => {
      throw new BackendError("keychain_unavailable", "The keychain did not answer.");
    };
    await app.signOut();
    expect(app.session?.user).toBeNull();
    expect(app.notice?.message).toBe("The keychain did not answer.");
    app.stop();
  });

  it("says files are being added while a picked folder is walked and journaled", async () => {
    const b = backend();
    const app = await signedInApp(b);
    let finish = () => {};
    const added = new Promise<void>((r) => (finish = r));
    b.pickFolder = async () => ({ id: 7, name: "big", size: null, path: "/home/alice/big" });
    b.enqueue = async () => added;
    const adding = app.addFolder();
    await until(() => app.adding === 1);
    finish();
    await adding;
    expect(app.adding).toBe(0);
    app.stop();
  });

  it("follows a dropped file from queued to confirmed", async () => {
    const b = backend();
    const app = await signedInApp(b);
    // The window takes the drop; the page only hears that the queue changed.
    b.dropFiles([{ name: "a.bin", size: 4 * 1024 * 1024 }]);
    await until(() => app.queue.length === 1);
    await until(() => app.queue[0]?.state === "confirmed");
    expect(app.totals.sent).toBe(app.totals.size);
    app.stop();
  });

  it("queues picked files by id and refuses ids nobody picked", async () => {
    const app = new AppState(backend({ picked: { "/home/alice/one.txt": 10, "/home/alice/two.txt": 20 } }));
    await app.start();
    await app.backend.signIn(signIn);
    await app.signedIn();
    await expect(app.backend.enqueue([77])).rejects.toMatchObject({ code: "unknown_pick" });
    await app.addFiles();
    expect(app.queue.map((i) => [i.name, i.size])).toEqual([["one.txt", 10], ["two.txt", 20]]);
    app.stop();
  });

  it("asks before plain http:// to another computer", async () => {
    const b = backend();
    await expect(b.signIn({ ...signIn, server: "http://files.example.com" })).rejects.toMatchObject({ code: "insecure_server" });
    await expect(b.signIn({ ...signIn, server: "ftp://files.example.com" })).rejects.toMatchObject({ code: "invalid_server" });
    await expect(b.signIn({ ...signIn, server: "https://files.example.com" })).resolves.toMatchObject({ name: "alice" });
    await expect(b.signIn({ ...signIn, server: "http://files.example.com", allowInsecure: true })).resolves.toMatchObject({ name: "alice" });
  });

  it("signs in with a connection profile, whose server keeps no history", async () => {
    const b = backend();
    const profile = 'token_url = "https://uploads.example.com/sts"\nshape = "aliyun_sts"\n[storage]\nprovider = "oss"\n';
    await expect(b.signIn({ ...signIn, connection: "shape = \"aliyun_sts\"" })).rejects.toMatchObject({ code: "protocol" });
    await expect(b.signIn({ ...signIn, connection: profile.replace("https", "http") })).rejects.toMatchObject({ code: "insecure_server" });
    await expect(b.signIn({ ...signIn, connection: profile })).resolves.toMatchObject({ name: "alice" });
    expect((await b.restore()).server).toBe("https://uploads.example.com/sts");
    await expect(b.history({ q: "", status: "" })).rejects.toMatchObject({ code: "local_history_only" });
    await b.signIn(signIn);
    await expect(b.history({ q: "", status: "" })).resolves.toHaveProperty("items");
  });

  it("counts failures and refreshes credentials at half-life", async () => {
    const app = new AppState(backend({ grantTtlSecs: 1 }));
    await app.start();
    await expect(app.backend.signIn({ ...signIn, password: "wrong" })).rejects.toMatchObject({ code: "invalid_credentials" });
    await app.backend.signIn(signIn);
    await app.signedIn();
    const first = app.credentials.expiresAt;
    await until(() => app.credentials.expiresAt !== first);
    expect(app.credentials.refreshing).toBe(false);
    (app.backend as MemoryBackend).dropFiles([{ name: "missing.txt", size: 3 }]);
    await until(() => app.totals.failed === 1);
    app.stop();
  });

  it("refuses after five failed sign-ins and offers memory-only when there is no keychain", async () => {
    const b = backend();
    for (let i = 0; i < 5; i++) await b.signIn({ ...signIn, password: "x" }).catch(() => {});
    await expect(b.signIn(signIn)).rejects.toMatchObject({ code: "rate_limited" });
    const other = backend();
    await expect(other.signIn({ ...signIn, username: "nokeychain" })).rejects.toBeInstanceOf(BackendError);
    await expect(other.signIn({ ...signIn, username: "nokeychain", memoryOnly: true })).resolves.toMatchObject({ name: "alice" });
  });

  it("limits history to the user and lets admins filter and export", async () => {
    const b = backend();
    await b.signIn(signIn);
    const mine = await b.history({ limit: 100 });
    expect(mine.items.every((r) => r.user === "alice")).toBe(true);
    await expect(b.historyCsv({})).rejects.toMatchObject({ code: "forbidden" });
    await b.signIn({ ...signIn, username: "admin", password: "admin-password" });
    const bob = await b.history({ user: "bob", limit: 100 });
    expect(bob.items.length).toBeGreaterThan(0);
    expect(bob.items.every((r) => r.user === "bob")).toBe(true);
    const csv = await b.historyCsv({ user: "bob" });
    const lines = csv.trim().split("\n");
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines).toHaveLength(bob.items.length + 1);
    const paged = await b.history({ limit: 4 });
    const last = paged.items[3];
    expect(paged.next_cursor).toBe(String(last?.id));
    const next = await b.history({ limit: 4, cursor: paged.next_cursor ?? "" });
    expect(next.items.every((r) => r.id < (last?.id ?? 0))).toBe(true);
  });

  it("shows each request retry, then the file's scheduled retry, then the upload going through", async () => {
    // The store answers 503 to seven PUTs: four request retries, the first attempt fails, the
    // second gets through after two more retries. Backoff at a tenth of the real one.
    const b = backend({ failingPuts: { "flaky.bin": 7 }, backoffScale: 0.1 });
    const app = await signedInApp(b);
    b.dropFiles([{ name: "flaky.bin", size: 1024 }]);
    await until(() => app.queue.length === 1);
    const id = app.queue[0]?.id ?? -1;
    await until(() => app.retries[id] !== undefined && app.queue[0]?.state === "uploading");
    expect(app.retries[id]).toMatchObject({ operation: "PutObject", maxAttempts: 5 });
    expect(app.retries[id]?.reason).toContain("503 SlowDown");
    expect(app.totals.retrying).toBe(1);
    await until(() => app.queue[0]?.retryAt !== null && app.queue[0]?.retryAt !== undefined);
    expect(app.queue[0]).toMatchObject({ state: "failed", attempts: 1, maxAttempts: 8, error: { code: "storage" } });
    expect(app.totals).toMatchObject({ retrying: 1, failed: 0 });
    await until(() => app.queue[0]?.state === "confirmed", 10_000);
    expect(app.retries[id]).toBeUndefined();
    expect(app.queue[0]).toMatchObject({ retryAt: null, attempts: 1, error: null });
    expect(app.totals).toMatchObject({ retrying: 0, failed: 0 });
    app.stop();
  }, 20_000);

  it("shows another account's unfinished files waiting for their owner, out of the totals", async () => {
    const b = backend({ failingPuts: { "stuck.bin": 1000 }, backoffScale: 0.1 });
    const app = await signedInApp(b);
    b.dropFiles([{ name: "stuck.bin", size: 1024 }, { name: "done.bin", size: 1024 }]);
    await until(() => app.queue.some((i) => i.name === "done.bin" && i.state === "confirmed"));
    await until(() => app.queue.some((i) => i.name === "stuck.bin" && i.retryAt !== null));
    await app.signOut();
    await app.backend.signIn({ ...signIn, username: "bob", password: "bob-password" });
    await app.signedIn();
    expect(app.queue.map((i) => [i.name, i.mine, i.owner])).toEqual([["stuck.bin", false, "alice"]]);
    expect(app.waiting).toEqual([{ account: "alice", files: 1 }]);
    expect(app.totals).toMatchObject({ size: 0, active: 0, retrying: 0, failed: 0 });
    const [before] = (await b.queue()).items;
    await expect(b.control("cancel", [before?.id ?? -1])).rejects.toMatchObject({ code: "forbidden" });
    await b.control("cancel", null);
    await b.control("pause", null);
    expect((await b.queue()).items[0]).toMatchObject({ name: "stuck.bin", state: before?.state, mine: false });
    expect(["queued", "failed"]).toContain(before?.state);
    app.stop();
  }, 20_000);

  it("never lets an older queue snapshot undo a newer state change", async () => {
    // The first queue read answers late (a slow IPC round trip); meanwhile the file fails and a
    // second read answers at once. The late, older answer must not put the file back.
    const b = backend();
    const delays: number[] = [];
    const read = b.queue.bind(b);
    b.queue = async () => {
      const snapshot = await read();
      await new Promise((r) => setTimeout(r, delays.shift() ?? 0));
      return snapshot;
    };
    const app = await signedInApp(b);
    delays.push(300);
    b.dropFiles([{ name: "missing.txt", size: 3 }]);
    await new Promise((r) => setTimeout(r, 600));
    expect(app.queue.map((i) => i.state)).toEqual(["failed"]);
    app.stop();
  });

  it("shows a page of a long queue with the totals of all of it, and pages through it", async () => {
    // 1 000 files of 1 KiB that barely move: a few upload, the rest wait.
    const b = backend({ rate: 1 });
    const app = await signedInApp(b);
    b.dropFiles(Array.from({ length: 1000 }, (_, i) => ({ name: `f${String(i).padStart(4, "0")}.bin`, size: 1024 })));
    await until(() => app.matching === 1000);
    expect(app.queue).toHaveLength(PAGE_ROWS);
    expect(app.queue[0]?.name).toBe("f0000.bin");
    // Counted over every file, not over the rows shown.
    expect(app.totals).toMatchObject({ files: 1000, size: 1000 * 1024, done: 0 });
    await app.goTo(900);
    expect(app.queue.map((i) => i.name)).toEqual(Array.from({ length: 100 }, (_, i) => `f0${900 + i}.bin`));
    // Beyond the end: the last page.
    await app.goTo(5000);
    expect(app.view.offset).toBe(900);
    await b.control("cancel", [app.queue[0]?.id ?? -1]);
    await app.showRows("finished");
    expect(app.queue.map((i) => [i.name, i.state])).toEqual([["f0900.bin", "cancelled"]]);
    expect(app.totals).toMatchObject({ files: 999, finished: 1 });
    await app.clearFinished();
    expect([app.matching, app.totals.finished]).toEqual([0, 0]);
    await app.showRows("all");
    expect(app.matching).toBe(999);
    app.stop();
  }, 20_000);

  it("reads the queue a few times a second however many events arrive", async () => {
    const b = backend({ rate: 1 });
    const reads = countReads(b);
    const app = await signedInApp(b);
    b.dropFiles([{ name: "a.bin", size: 10 }]);
    await until(() => app.matching === 1);
    const id = app.queue[0]?.id ?? -1;
    reads.n = 0;
    // 500 events in half a second (a queue of small files), then a second of quiet.
    for (let i = 0; i < 50; i++) {
      for (let j = 0; j < 10; j++) app.handle({ type: "queue_changed" });
      app.handle({ type: "state", file_id: id, state: "uploading", error: null });
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(reads.n).toBeGreaterThan(0);
    expect(reads.n).toBeLessThanOrEqual(8);
    app.stop();
  }, 20_000);

  it("keeps a state told while the page was read over that read's older answer", async () => {
    const b = backend({ rate: 1 });
    const app = await signedInApp(b);
    b.dropFiles([{ name: "a.bin", size: 10 }]);
    await until(() => app.matching === 1);
    const id = app.queue[0]?.id ?? -1;
    // A read whose answer is taken before the file is confirmed and arrives after.
    const read = b.queue.bind(b);
    let release = () => {};
    let held = false;
    b.queue = async (query) => {
      const snapshot = await read(query);
      // Only the first read is held: later ones (for the event below) answer at once.
      if (!held) {
        held = true;
        await new Promise<void>((r) => (release = r));
      }
      return snapshot;
    };
    const reading = app.loadQueue();
    await new Promise((r) => setTimeout(r, 50));
    app.handle({ type: "state", file_id: id, state: "confirmed", error: null });
    release();
    await reading;
    expect(app.queue[0]?.state).toBe("confirmed");
    app.stop();
  });

  it("leaves a gap after each slow read before the next one events ask for", async () => {
    const b = backend({ rate: 1 });
    const read = b.queue.bind(b);
    const reads: { start: number; end: number }[] = [];
    b.queue = async (query) => {
      const start = Date.now();
      const page = await read(query);
      await new Promise((r) => setTimeout(r, 150));
      reads.push({ start, end: Date.now() });
      return page;
    };
    const app = await signedInApp(b);
    reads.length = 0;
    // Events all the time for 1.5 s.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      app.handle({ type: "queue_changed" });
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 600));
    expect(reads.length).toBeGreaterThan(1);
    for (let i = 1; i < reads.length; i++) {
      const gap = (reads[i]?.start ?? 0) - (reads[i - 1]?.end ?? 0);
      expect(gap).toBeGreaterThanOrEqual(240);
    }
    app.stop();
  }, 20_000);

  it("drops a read answered for the account that just signed out", async () => {
    const b = backend({ rate: 1 });
    const app = await signedInApp(b);
    b.dropFiles([{ name: "a.bin", size: 10 }]);
    await until(() => app.matching === 1);
    const read = b.queue.bind(b);
    b.queue = async (query) => {
      const page = await read(query);
      await new Promise((r) => setTimeout(r, 200));
      return page;
    };
    const reading = app.loadQueue();
    await new Promise((r) => setTimeout(r, 20));
    await app.signOut();
    await reading;
    expect([app.queue.length, app.matching, app.totals.files]).toEqual([0, 0, 0]);
    app.stop();
  });

  it("reads nothing for events while hidden in the tray, and once when shown again", async () => {
    // A document that can be hidden, as the webview's is when the window goes to the tray.
    const listeners: (() => void)[] = [];
    const doc = {
      hidden: false,
      addEventListener: (_: string, f: () => void) => listeners.push(f),
      removeEventListener: () => {},
    };
    (globalThis as { document?: unknown }).document = doc;
    try {
      const b = backend({ rate: 1 });
      const reads = countReads(b);
      const app = await signedInApp(b);
      doc.hidden = true;
      reads.n = 0;
      for (let i = 0; i < 20; i++) {
        app.handle({ type: "queue_changed" });
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(reads.n).toBe(0);
      doc.hidden = false;
      for (const shown of listeners) shown();
      await until(() => reads.n > 0);
      await new Promise((r) => setTimeout(r, 600));
      expect(reads.n).toBe(1);
      app.stop();
    } finally {
      delete (globalThis as { document?: unknown }).document;
    }
  });

  it("tells screen readers how the queue goes a few times, not with every file", async () => {
    const b = backend({ rate: 50 * 1024 * 1024 });
    const app = await signedInApp(b);
    const told: string[] = [];
    const watch = setInterval(() => {
      if (app.spoken !== told[told.length - 1]) told.push(app.spoken);
    }, 2);
    b.dropFiles(Array.from({ length: 300 }, (_, i) => ({ name: `s${i}.bin`, size: 1024 })));
    await until(() => app.spoken === "All 300 files uploaded.", 15_000);
    clearInterval(watch);
    // The first words, perhaps one change within the 10 s, and the end: never one per read.
    expect(told.filter(Boolean).length).toBeLessThanOrEqual(4);
    app.stop();
  }, 20_000);

  it("asks about files already at the store, one at a time or all at once, and settles them", async () => {
    // The seeded history has alice's notes.txt, budget.xlsx and draft.docx at the store.
    const b = backend({
      picked: { "/home/alice/notes.txt": 10, "/home/alice/budget.xlsx": 20, "/home/alice/draft.docx": 30, "/home/alice/new.txt": 40 },
    });
    const app = await signedInApp(b);
    await app.addFiles();
    await until(() => app.conflicts.count === 3, 5000);
    expect(app.conflicts.first?.name).toBe("notes.txt");
    await until(() => app.queue.find((i) => i.name === "new.txt")?.state === "confirmed");
    // One file: kept beside the other.
    await app.decide("rename", false);
    expect(app.conflicts.count).toBe(2);
    await until(() => app.queue.find((i) => i.name === "notes.txt")?.state === "confirmed");
    const keys = (await b.history({ limit: 100 })).items.map((r) => r.key);
    expect(keys).toContain("uploads/1/notes (1).txt");
    // The rest at once: skipped.
    await app.decide("skip", true);
    await until(() => app.conflicts.count === 0 && app.queue.filter((i) => i.state === "skipped").length === 2);
    expect(app.conflicts.first).toBeNull();
    app.stop();
  });
});
