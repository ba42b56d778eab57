import { afterEach, describe, expect, it } from "vitest";
import type { UploadPage } from "../backend";
import { MemoryBackend } from "../backend/memory";
import { bars, HistoryView, toQuery } from "./history.svelte";

const backends: MemoryBackend[] = [];
afterEach(() => {
  for (const b of backends.splice(0)) b.close();
});

async function signedIn(): Promise<MemoryBackend> {
  const b = new MemoryBackend({ tickMs: 20 });
  backends.push(b);
  await b.signIn({
    server: "http://127.0.0.1:8480",
    username: "alice",
    password: "alice-password",
    remember: false,
    memoryOnly: true,
    allowInsecure: false,
  });
  return b;
}

describe("the History screen's state", () => {
  // (That typing asks nothing is the component's to keep: the Playwright test counts calls.)
  it("applies the filters as typed and shows only the newest request's answer", async () => {
    const b = await signedIn();
    const asked: string[] = [];
    const answer = b.history.bind(b);
    let slow = true;
    b.history = async (query) => {
      asked.push(query.q ?? "");
      const page: UploadPage = await answer(query);
      // The first request comes back last.
      if (slow) {
        slow = false;
        await new Promise((r) => setTimeout(r, 200));
        return { ...page, items: [] };
      }
      return page;
    };
    const view = new HistoryView(() => b, () => false);
    const first = view.apply();
    view.filters.q = "scan";
    const second = view.apply();
    await Promise.all([first, second]);
    expect(asked).toEqual(["", "scan"]);
    expect(view.rows.length).toBeGreaterThan(0);
    expect(view.rows.every((r) => r.name.includes("scan"))).toBe(true);
  });

  it("reads the date filters as local days", () => {
    // Node reads TZ again when it changes.
    const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
    const zone = env.TZ;
    env.TZ = "Asia/Shanghai";
    try {
      const query = toQuery({ q: "", user: "", status: "", since: "2026-03-01", until: "2026-03-02" });
      expect(query.since).toBe("2026-02-28T16:00:00.000Z");
      // "To" takes in the whole of its day.
      expect(query.until).toBe("2026-03-02T16:00:00.000Z");
      expect(toQuery({ q: "", user: "", status: "", since: "", until: "" }).since).toBeUndefined();
    } finally {
      env.TZ = zone;
    }
  });

  it("draws bars as tall as their counts", () => {
    const drawn = bars([
      { day: "2026-03-01", user: "alice", count: 3, bytes: 10 },
      { day: "2026-03-02", user: "alice", count: 3, bytes: 90_000 },
      { day: "2026-03-03", user: "alice", count: 6, bytes: 5 },
      { day: "2026-03-03", user: "bob", count: 3, bytes: 5 },
    ]);
    expect(drawn.map((d) => [d.day, d.count, d.height])).toEqual([
      ["2026-03-01", 3, 80 / 3],
      ["2026-03-02", 3, 80 / 3],
      ["2026-03-03", 9, 80],
    ]);
  });
});
