// Accessibility of every screen, in light and dark: axe-core's audit (WCAG 2.x A and AA, and its
// best practices) finds nothing; every control is reached by Tab and shows where the focus is;
// the queue's progress is told to screen readers in a polite live region.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { signIn, start } from "./harness.mjs";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];
let harness;

before(async () => {
  harness = await start();
});

after(async () => {
  await harness?.stop();
});

/** axe-core's violations on the page as it is now, one line each. */
async function violations(p) {
  if (!(await p.evaluate(() => "axe" in window))) await p.addScriptTag({ path: axePath });
  const found = await p.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
    RULES,
  );
  return found.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")} — ${n.failureSummary?.split("\n")[1]?.trim()}`));
}

/** Fails with every violation on `screen`. */
async function audit(p, screen, found) {
  found[screen] = await violations(p);
}

/** The controls Tab reaches from the top of the page, each with whether its focus is visible. */
async function tabStops(p) {
  await p.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  const stops = [];
  for (let i = 0; i < 60; i++) {
    await p.keyboard.press("Tab");
    const stop = await p.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
      const name = el.getAttribute("aria-label") || el.textContent?.trim() || el.getAttribute("name") || el.tagName;
      return { name: `${el.tagName.toLowerCase()} ${name}`.slice(0, 60), visible: outlined || style.boxShadow !== "none" };
    });
    if (!stop || stops.some((s) => s.name === stop.name)) break;
    stops.push(stop);
  }
  return stops;
}

async function dropFiles(p, names, size = 2 * 1024 * 1024) {
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

for (const scheme of ["light", "dark"]) {
  test(`every screen passes axe-core's audit (${scheme})`, async () => {
    const p = await harness.page("?failing=stuck.bin:1000", scheme);
    const found = {};
    await audit(p, "sign-in", found);
    const server = await p.getByLabel("Server").inputValue();
    await p.getByLabel("Server").fill("http://192.0.2.7:8080");
    await p.getByTestId("insecure-warning").waitFor();
    await audit(p, "sign-in, plain http to another computer", found);
    await p.getByLabel("Server").fill(server);
    await p.getByTestId("network-toggle").click();
    await p.getByTestId("proxy-mode").selectOption("manual");
    await audit(p, "sign-in, network settings", found);
    await p.getByTestId("proxy-mode").selectOption("system");
    await p.getByTestId("network-toggle").click();
    await signIn(p, "alice", "wrong");
    await p.getByRole("alert").waitFor();
    await audit(p, "sign-in, wrong password", found);
    await signIn(p, "alice", "alice-password");
    await p.getByText("Drop files or folders here").waitFor();
    await audit(p, "uploads, empty", found);
    await dropFiles(p, ["stuck.bin", "fine.txt", "missing.txt"]);
    await p.locator('[data-testid="item"][data-state="retrying"]').waitFor();
    await audit(p, "uploads, retrying and done", found);
    // notes.txt is at the store already (alice's history): the window asks what to do.
    await dropFiles(p, ["notes.txt"], 1024);
    await p.getByTestId("conflict").waitFor();
    await audit(p, "uploads, a file already at the store", found);
    await p.getByRole("button", { name: "Keep both" }).click();
    await p.getByTestId("conflict").waitFor({ state: "detached" });
    await dropFiles(p, Array.from({ length: 150 }, (_, i) => `page-${i}.txt`), 1024);
    await p.getByRole("navigation", { name: "Queue pages" }).waitFor();
    await audit(p, "uploads, a queue of two pages", found);
    // Paging by keyboard onto the last page disables "Last": the focus moves to the range,
    // which says where the page is, rather than to nowhere.
    await p.getByRole("button", { name: "Last" }).focus();
    await p.keyboard.press("Enter");
    await p.getByTestId("range").filter({ hasText: /^101–/ }).waitFor();
    assert.equal(await p.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName), "range");
    await p.getByRole("button", { name: "First" }).click();
    await p.getByRole("button", { name: "Folders" }).click();
    await p.getByRole("button", { name: "Choose…" }).click();
    await p.getByRole("button", { name: "Watch folder" }).click();
    await p.getByRole("cell", { name: "/home/alice/Photos", exact: true }).waitFor();
    await audit(p, "folders", found);
    await p.getByRole("button", { name: "Settings" }).click();
    await p.getByRole("button", { name: "Save", exact: true }).click();
    await p.getByText(/^Saved\./).waitFor();
    await p.getByRole("button", { name: "Save diagnostics…" }).click();
    await p.getByText(/^Saved to .*ferry-diagnostics\.zip\.$/).waitFor();
    await audit(p, "settings, diagnostics saved", found);
    await p.getByRole("button", { name: "History" }).click();
    await p.getByRole("button", { name: "Apply" }).waitFor();
    await audit(p, "history", found);
    await p.getByRole("button", { name: "Sign out" }).click();
    await signIn(p, "admin", "admin-password");
    await p.getByRole("button", { name: "History" }).click();
    await p.getByRole("img", { name: "Uploads per day" }).waitFor();
    await audit(p, "history, admin with chart", found);
    await p.context().close();
    const failing = Object.entries(found).filter(([, v]) => v.length > 0);
    assert.equal(failing.length, 0, failing.map(([screen, v]) => `${screen}:\n  ${v.join("\n  ")}`).join("\n"));
  });
}

test("every control is reached by Tab, with its focus visible", async () => {
  const p = await harness.page();
  await p.getByLabel("Username").waitFor();
  const signInStops = await tabStops(p);
  for (const name of ["input username", "input password", "button Sign in"]) {
    assert.ok(signInStops.some((s) => s.name === name), `Tab reaches ${name}: ${JSON.stringify(signInStops)}`);
  }
  assert.deepEqual(signInStops.filter((s) => !s.visible), [], "every focused control shows its focus");
  await signIn(p, "alice", "alice-password");
  await p.getByText("Drop files or folders here").waitFor();
  await dropFiles(p, ["a.bin"]);
  await p.locator('[data-testid="item"]').first().waitFor();
  const stops = await tabStops(p);
  const names = stops.map((s) => s.name);
  for (const name of ["Uploads", "Folders", "History", "Settings", "Sign out", "Add files…", "Pause all"]) {
    assert.ok(names.some((n) => n.endsWith(` ${name}`)), `Tab reaches ${name}: ${JSON.stringify(names)}`);
  }
  const hidden = stops.filter((s) => !s.visible);
  assert.deepEqual(hidden, [], "every focused control shows its focus");
  // Enter on a focused tab opens its screen.
  await p.getByRole("button", { name: "Settings" }).focus();
  await p.keyboard.press("Enter");
  await p.getByRole("button", { name: "Save", exact: true }).waitFor();
  await p.context().close();
});

test("the queue's progress is told politely to screen readers, when files finish rather than on every byte", async () => {
  const p = await harness.page();
  await signIn(p, "alice", "alice-password");
  const live = p.getByTestId("announce");
  assert.equal(await live.getAttribute("aria-live"), "polite");
  const told = [];
  await p.exposeFunction("__told", (text) => told.push(text));
  await p.evaluate(() => {
    const el = document.querySelector('[data-testid="announce"]');
    new MutationObserver(() => window.__told(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await dropFiles(p, ["one.bin", "two.bin"], 30 * 1024 * 1024);
  await p.locator('[data-testid="item"][data-state="confirmed"]').nth(1).waitFor({ timeout: 30_000 });
  await p.waitForTimeout(300);
  const last = await live.innerText();
  assert.match(last, /All 2 files uploaded/);
  // Bytes moved many times meanwhile; the region changed only as files finished.
  assert.ok(told.length >= 1 && told.length <= 8, JSON.stringify(told));
  await p.context().close();
});
