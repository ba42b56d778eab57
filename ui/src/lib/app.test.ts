import { afterEach, describe, expect, it } from "vitest";
import { BackendError, CSV_HEADER } from "../backend";
import { MemoryBackend } from "../backend/memory";
import { AppState } from "./app.svelte";

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

describe("AppState over the memory backend", () => {
  it("follows a dropped file from queued to confirmed", async () => {
    const b = backend();
    const app = new AppState(b);
    await app.start();
    await app.backend.signIn(signIn);
    await app.signedIn();
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
});
