// The build the desktop app embeds (ui/dist) carries no simulated backend: no demo accounts,
// no demo passwords, nothing that could stand in for the app outside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

test("the app's build has no demo backend or demo passwords", () => {
  assert.ok(existsSync(join(dist, "index.html")), "build the UI first (npm run build)");
  const built = files(dist);
  assert.ok(built.some((f) => f.endsWith(".js")), "the build has scripts");
  for (const file of built) {
    const text = readFileSync(file, "utf8");
    for (const demo of ["alice-password", "bob-password", "MemoryBackend", "seedHistory"]) {
      assert.ok(!text.includes(demo), `${file} contains ${demo}`);
    }
  }
});
