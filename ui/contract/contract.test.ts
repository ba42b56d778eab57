// The contract scenario on MemoryBackend in Node. The same scenario runs on the real desktop app
// (tests/e2e/desktop.rs) and in Chromium (e2e/ui.test.mjs); all must give expected.json.

import { describe, expect, it } from "vitest";
import { MemoryBackend } from "../src/backend/memory";
import expected from "./expected.json";
import { scenario } from "./scenario.js";

describe("the backend contract", () => {
  it("MemoryBackend gives the same shapes and outcomes as the desktop app", async () => {
    const backend = new MemoryBackend({
      tickMs: 20,
      rate: 50 * 1024 * 1024,
      picked: { "/home/alice/contract.txt": 21 },
      seedHistory: false,
      // As the harness of the desktop's run arranges it: the first five PUTs get 503.
      failingPuts: { "contract.txt": 5 },
    });
    try {
      const steps = await scenario(backend, {
        server: "http://127.0.0.1:8480",
        username: "alice",
        password: "alice-password",
        other: { username: "bob", password: "bob-password" },
      });
      expect(steps).toEqual(expected);
    } finally {
      backend.close();
    }
  }, 60_000);
});
