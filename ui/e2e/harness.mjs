// What the page tests share: the demo build served on loopback, Debian's Chromium, a page per
// test, signing in.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { extname, join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
// The demo build: the page with its simulated backend (the build the app embeds has none).
const dist = join(here, "..", "dist-demo");
export const shots = join(here, "..", "..", "docs", "screenshots");
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

/** axe-core's violations on the page as it is now, one line each. */
export async function violations(p) {
  if (!(await p.evaluate(() => "axe" in window))) await p.addScriptTag({ path: axePath });
  const found = await p.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
    RULES,
  );
  return found.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")} — ${n.failureSummary?.split("\n")[1]?.trim()}`));
}

/** Serves the demo build and starts Chromium; `stop()` ends both. */
export async function start() {
  assert.ok(existsSync(join(dist, "index.html")), "build the demo UI first (npm run build:demo)");
  mkdirSync(shots, { recursive: true });
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = join(dist, path === "/" ? "index.html" : path);
    if (!file.startsWith(dist) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 30_000,
  });
  return {
    /** A new page at `query`, in the given colour scheme, in a browser whose language (the
     * demo's stand-in for the OS's) is `locale`. */
    async page(query = "", colorScheme = "light", locale = "en-US") {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, colorScheme, locale, acceptDownloads: true });
      const p = await context.newPage();
      p.setDefaultTimeout(15_000);
      await p.goto(`${base}/${query}`);
      return p;
    },
    async stop() {
      await browser?.close();
      server?.close();
    },
  };
}

/** The sentence at `path` (`uploads.drop`) of the catalog the page speaks now. */
export async function say(p, path) {
  await p.waitForFunction(() => window.__ferry?.text);
  const said = await p.evaluate((path) => path.split(".").reduce((at, key) => at?.[key], window.__ferry.text()), path);
  assert.equal(typeof said, "string", `the catalog has a sentence at ${path}`);
  return said;
}

export async function signIn(p, username, password) {
  await p.getByLabel(await say(p, "signIn.username")).fill(username);
  await p.getByLabel(await say(p, "signIn.password")).fill(password);
  await p.getByRole("button", { name: await say(p, "signIn.submit"), exact: true }).click();
}

/** Drops files of `size` bytes named `names` on the page's drop area. */
export async function dropFiles(p, names, size = 2 * 1024 * 1024) {
  const transfer = await p.evaluateHandle(
    ([names, size]) => {
      const dt = new DataTransfer();
      for (const name of names) dt.items.add(new File([new Uint8Array(size)], name));
      return dt;
    },
    [names, size],
  );
  await p.dispatchEvent('[data-testid="drop"]', "drop", { dataTransfer: transfer });
}

/** Goes through every screen and state worth seeing — sign-in (with its warnings, network
 * settings tested, a connection profile and a refusal), the queue (retrying, paused, a
 * conflict, two pages), folders, settings,
 * history (a user's, an admin's with its chart) — in whatever language the page speaks, and
 * calls `at(screen)` on each. The page must be opened with `?failing=stuck.bin:1000`. */
export async function tour(p, at) {
  const button = async (path, options = {}) => p.getByRole("button", { name: await say(p, path), ...options });
  await at("sign-in");
  const serverField = p.getByLabel(await say(p, "signIn.server"));
  const server = await serverField.inputValue();
  await serverField.fill("http://192.0.2.7:8080");
  await p.getByTestId("insecure-warning").waitFor();
  await at("sign-in, plain http to another computer");
  await serverField.fill(server);
  await p.getByTestId("network-toggle").click();
  await p.getByTestId("proxy-mode").selectOption("manual");
  await at("sign-in, network settings");
  await p.getByTestId("proxy-mode").selectOption("system");
  await (await button("network.test")).click();
  await p.getByTestId("connection-report").getByText(await say(p, "network.appServer"), { exact: false }).waitFor();
  await at("sign-in, a connection tested");
  await p.getByTestId("network-toggle").click();
  await p.getByTestId("other-server").click();
  await p.getByLabel(await say(p, "signIn.profile")).waitFor();
  await at("sign-in, a connection profile");
  await p.getByTestId("other-server").click();
  await signIn(p, "alice", "wrong");
  await p.getByRole("alert").waitFor();
  await at("sign-in, wrong password");
  await signIn(p, "alice", "alice-password");
  await p.getByText(await say(p, "uploads.drop")).waitFor();
  await at("uploads, empty");
  await dropFiles(p, ["stuck.bin", "fine.txt", "missing.txt"]);
  await p.locator('[data-testid="item"][data-state="retrying"]').waitFor();
  await at("uploads, retrying and done");
  await p.getByRole("button", { name: `${await say(p, "uploads.actions.pause")} stuck.bin`, exact: true }).click();
  await p.locator('[data-testid="item"][data-state="paused"]').waitFor();
  await at("uploads, a file paused");
  // notes.txt is at the store already (alice's history): the window asks what to do.
  await dropFiles(p, ["notes.txt"], 1024);
  await p.getByTestId("conflict").waitFor();
  await at("uploads, a file already at the store");
  await (await button("conflict.answers.rename.text")).click();
  await p.getByTestId("conflict").waitFor({ state: "detached" });
  await dropFiles(p, Array.from({ length: 150 }, (_, i) => `page-${i}.txt`), 1024);
  await p.getByRole("navigation", { name: await say(p, "uploads.pages") }).waitFor();
  await at("uploads, a queue of two pages");
  // Paging by keyboard onto the last page disables "Last": the focus moves to the range,
  // which says where the page is, rather than to nowhere.
  await (await button("uploads.last")).focus();
  await p.keyboard.press("Enter");
  await p.getByTestId("range").filter({ hasText: /\b101–/ }).waitFor();
  assert.equal(await p.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName), "range");
  await (await button("uploads.first")).click();
  await (await button("app.screens.folders", { exact: true })).click();
  await (await button("folders.choose")).click();
  await (await button("folders.watch")).click();
  // (The cell holds the folder's error too, when it cannot be watched.)
  await p.getByRole("cell", { name: /^\/home\/alice\/Photos/ }).waitFor();
  await at("folders");
  await (await button("app.screens.settings", { exact: true })).click();
  await (await button("settings.save", { exact: true })).click();
  await p.getByText(await say(p, "settings.saved")).waitFor();
  await (await button("settings.saveDiagnostics")).click();
  await p.getByTestId("diagnostics").filter({ hasText: /ferry-diagnostics\.zip/ }).waitFor();
  await at("settings, diagnostics saved");
  await (await button("app.screens.history", { exact: true })).click();
  await (await button("history.apply")).waitFor();
  await at("history");
  await (await button("app.signOut")).click();
  await signIn(p, "admin", "admin-password");
  await (await button("app.screens.history", { exact: true })).click();
  await p.getByRole("img", { name: await say(p, "history.perDay") }).waitFor();
  await at("history, admin with chart");
}
