// What the page tests share: the demo build served on loopback, Debian's Chromium, a page per
// test, signing in.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { extname, join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
// The demo build: the page with its simulated backend (the build the app embeds has none).
const dist = join(here, "..", "dist-demo");
export const shots = join(here, "..", "..", "docs", "screenshots");
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };

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
    /** A new page at `query`, in the given colour scheme. */
    async page(query = "", colorScheme = "light") {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, colorScheme, acceptDownloads: true });
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

export async function signIn(p, username, password) {
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
}
