// Accessibility of every screen, in light and dark: axe-core's audit (WCAG 2.x A and AA, and its
// best practices) finds nothing; every control is reached by Tab and shows where the focus is;
// the queue's progress is told to screen readers in a polite live region.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dropFiles, signIn, start, tour, violations } from "./harness.mjs";

let harness;

before(async () => {
  harness = await start();
});

after(async () => {
  await harness?.stop();
});

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


for (const scheme of ["light", "dark"]) {
  test(`every screen passes axe-core's audit (${scheme})`, async () => {
    const p = await harness.page("?failing=stuck.bin:1000", scheme);
    const found = {};
    await tour(p, (screen) => audit(p, screen, found));
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
