// The built UI in headless Chromium (Debian's), on the in-memory backend: sign-in, drop →
// progress → done, the credential countdown and refresh, admin history and CSV, and the backend
// contract scenario. Each screen is saved to docs/screenshots/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { shots, signIn, start } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));

// The header of the app server's CSV export (crates/ferry-server/src/uploads.rs).
const SERVER_CSV_HEADER = "id,user,bucket,key,name,size,etag,checksum,device,started_at,completed_at,status,confirmed_by";
let harness;

before(async () => {
  harness = await start();
});

after(async () => {
  await harness?.stop();
});

const page = (query, colorScheme) => harness.page(query, colorScheme);

test("sign-in: a wrong password is explained, the right one opens the uploads", async () => {
  const p = await page();
  await p.screenshot({ path: join(shots, "sign-in.png") });
  await signIn(p, "alice", "wrong");
  await p.getByRole("alert").waitFor();
  assert.match(await p.getByRole("alert").innerText(), /Wrong username or password/);
  await p.screenshot({ path: join(shots, "sign-in-error.png") });
  await signIn(p, "alice", "alice-password");
  await p.getByText("Drop files or folders here").waitFor();
  await p.context().close();
});

test("drop → progress → confirmed, with the pickers too", async () => {
  const p = await page();
  await signIn(p, "alice", "alice-password");
  const transfer = await p.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(30 * 1024 * 1024)], "dropped-video.mp4"));
    dt.items.add(new File(["partial"], "download.part"));
    return dt;
  });
  // The drop lands on the page; the window takes it (as the desktop's shell does) and the page
  // only hears that the queue changed.
  await p.dispatchEvent('[data-testid="drop"]', "drop", { dataTransfer: transfer });
  await p.locator('[data-testid="item"][data-state="uploading"]').first().waitFor();
  await p.getByRole("button", { name: "Add files…" }).click();
  // Bytes are moving (progress events follow the uploading state).
  await p.waitForFunction(() => !document.querySelector('[data-testid="overall"]')?.textContent?.startsWith("0 B"));
  await p.screenshot({ path: join(shots, "uploads.png") });
  await p.locator('[data-testid="item"][data-state="confirmed"]').nth(2).waitFor({ timeout: 30_000 });
  const rows = await p.locator('[data-testid="item"]').evaluateAll((rows) =>
    rows.map((r) => `${r.querySelector("td")?.textContent} ${r.dataset.state}`),
  );
  assert.deepEqual(rows.sort(), [
    "download.part skipped",
    "dropped-video.mp4 confirmed",
    "holiday.mp4 confirmed",
    "report.pdf confirmed",
  ]);
  assert.match(await p.getByTestId("overall").innerText(), /0 active/);
  await p.context().close();
});

/** The text, state and buttons of the queue row of `name`. */
async function row(p, name) {
  const r = p.locator('[data-testid="item"]').filter({ has: p.getByRole("cell", { name, exact: true }) });
  return {
    text: await r.innerText(),
    state: await r.getAttribute("data-state"),
    buttons: await r.getByRole("button").allInnerTexts(),
  };
}

/** Waits until the row of `name` shows `text` (a string or RegExp). */
async function rowShows(p, name, text, timeout = 15_000) {
  await p
    .locator('[data-testid="item"]')
    .filter({ has: p.getByRole("cell", { name, exact: true }) })
    .filter({ hasText: text })
    .waitFor({ timeout });
  return row(p, name);
}

test("a file the store keeps refusing says it is retrying: which request, why, which attempt, when next", async () => {
  // The store answers 503 to seven PUTs of flaky.bin: four request retries, a failed first
  // attempt, then two more retries and success. missing.txt fails for good.
  const p = await page("?failing=flaky.bin:7");
  await signIn(p, "alice", "alice-password");
  const transfer = await p.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(1024 * 1024)], "flaky.bin"));
    dt.items.add(new File(["gone"], "missing.txt"));
    return dt;
  });
  await p.dispatchEvent('[data-testid="drop"]', "drop", { dataTransfer: transfer });
  const request = await rowShows(p, "flaky.bin", /retrying PutObject: .*503 SlowDown.*, attempt [1-4] of 5/);
  assert.equal(request.state, "uploading");
  const failed = await rowShows(p, "missing.txt", "The file no longer exists.");
  assert.equal(failed.state, "failed");
  assert.deepEqual(failed.buttons, ["Retry", "Cancel"]);
  const scheduled = await rowShows(p, "flaky.bin", /Retrying in \d+ s — .*503 SlowDown.* \(attempt 1 of 8\)/);
  assert.equal(scheduled.state, "retrying");
  assert.deepEqual(scheduled.buttons, ["Retry now", "Pause", "Cancel"]);
  assert.match(await p.getByTestId("overall").innerText(), /1 retrying · 1 failed/);
  await p.screenshot({ path: join(shots, "uploads-retrying.png") });
  // The countdown moves.
  const first = Number(/Retrying in (\d+) s/.exec(scheduled.text)?.[1]);
  await rowShows(p, "flaky.bin", new RegExp(`Retrying (in ${first - 1} s|now)`), 3_000);
  const done = await rowShows(p, "flaky.bin", "confirmed", 20_000);
  assert.equal(done.state, "confirmed");
  assert.doesNotMatch(done.text, /etry/);
  await p.context().close();
});

test("a file already at the store is asked about: keep both, skip, or the same for all", async () => {
  const p = await page();
  await signIn(p, "alice", "alice-password");
  // notes.txt, budget.xlsx and draft.docx are at the store already (alice's history).
  const transfer = await p.evaluateHandle(() => {
    const dt = new DataTransfer();
    for (const name of ["notes.txt", "budget.xlsx", "draft.docx", "fresh.txt"]) dt.items.add(new File(["x"], name));
    return dt;
  });
  await p.dispatchEvent('[data-testid="drop"]', "drop", { dataTransfer: transfer });
  const prompt = p.getByTestId("conflict");
  await prompt.getByText("3 files are already at the store").waitFor();
  assert.match(await prompt.innerText(), /notes\.txt would go to notes\.txt/);
  const asking = await rowShows(p, "notes.txt", /already at the store/);
  assert.equal(asking.state, "asking");
  assert.deepEqual(asking.buttons, ["Cancel"]);
  await rowShows(p, "fresh.txt", "confirmed");
  await p.screenshot({ path: join(shots, "conflict.png") });
  // One file: kept beside the other; the prompt moves on to the next.
  await prompt.getByRole("button", { name: "Keep both" }).click();
  await prompt.getByText("2 files are already at the store").waitFor();
  await rowShows(p, "notes.txt", "confirmed");
  // The rest at once.
  await prompt.getByTestId("apply-to-all").check();
  await prompt.getByRole("button", { name: "Skip" }).click();
  await prompt.waitFor({ state: "detached" });
  await rowShows(p, "budget.xlsx", "skipped");
  await rowShows(p, "draft.docx", "skipped");
  await p.getByRole("button", { name: "History" }).click();
  await p.getByRole("cell", { name: "uploads/1/notes (1).txt" }).waitFor();
  await p.context().close();
});

test("another account's unfinished file waits for its owner, with no actions", async () => {
  const p = await page("?failing=stuck.bin:1000", "dark");
  await signIn(p, "alice", "alice-password");
  const transfer = await p.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(1024 * 1024)], "stuck.bin"));
    dt.items.add(new File(["fine"], "fine.txt"));
    return dt;
  });
  await p.dispatchEvent('[data-testid="drop"]', "drop", { dataTransfer: transfer });
  await rowShows(p, "fine.txt", "confirmed");
  await rowShows(p, "stuck.bin", /Retrying in \d+ s/);
  await p.screenshot({ path: join(shots, "uploads-retrying-dark.png") });
  await p.getByRole("button", { name: "Sign out" }).click();
  await signIn(p, "bob", "bob-password");
  const theirs = await rowShows(p, "stuck.bin", "Waiting for alice to sign in");
  assert.equal(theirs.state, "waiting");
  assert.deepEqual(theirs.buttons, []);
  assert.equal(await p.getByRole("cell", { name: "fine.txt", exact: true }).count(), 0, "alice's finished file is not shown");
  assert.match(await p.getByTestId("overall").innerText(), /1 file waiting for alice/);
  await p.screenshot({ path: join(shots, "uploads-waiting-dark.png") });
  // Bob's "all" buttons leave it alone.
  for (const name of ["Pause all", "Resume all", "Retry failed"]) await p.getByRole("button", { name }).click();
  await p.waitForTimeout(300);
  assert.equal((await row(p, "stuck.bin")).state, "waiting");
  // Back as alice, it is hers again, still being retried.
  await p.getByRole("button", { name: "Sign out" }).click();
  await signIn(p, "alice", "alice-password");
  const mine = await rowShows(p, "stuck.bin", /retrying|Retrying/);
  assert.notEqual(mine.state, "waiting");
  await p.context().close();
});

/** The countdown's seconds left, from `mm:ss`. */
async function secondsLeft(p) {
  const text = await p.getByTestId("expiry").innerText();
  const m = /(\d\d):(\d\d)/.exec(text);
  assert.ok(m, `a countdown in ${JSON.stringify(text)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

test("the credential countdown moves, a refresh is shown, and the countdown goes back up", async () => {
  const p = await page("?ttl=8");
  await signIn(p, "alice", "alice-password");
  await p.getByTestId("expiry").waitFor();
  const first = await secondsLeft(p);
  const refreshedFirst = await p.getByTestId("refresh").innerText();
  assert.match(refreshedFirst, /Refreshed at/);
  await p.waitForTimeout(1300);
  const second = await secondsLeft(p);
  assert.ok(second < first, `the countdown moves: ${first} then ${second}`);
  // Half-life of 8 s: the refresh starts at about 4 s left and is shown while it lasts…
  await p.getByTestId("refresh").getByText("Refreshing…").waitFor({ timeout: 8_000 });
  const during = await secondsLeft(p);
  assert.ok(during <= 5, `refreshing at half-life, ${during} s left`);
  await p.screenshot({ path: join(shots, "credentials-refreshing.png") });
  // …and afterwards the countdown is back near the full lifetime.
  await p.getByTestId("refresh").getByText(/Refreshed at/).waitFor({ timeout: 5_000 });
  const after = await secondsLeft(p);
  assert.ok(after >= 6, `the countdown went back up: ${during} then ${after}`);
  await p.context().close();
});

test("plain http:// to another computer needs explicit consent", async () => {
  const p = await page();
  await p.getByLabel("Server").fill("http://files.example.com:8480");
  await p.getByTestId("insecure-warning").waitFor();
  await signIn(p, "alice", "alice-password");
  await p.getByRole("alert").waitFor();
  assert.match(await p.getByRole("alert").innerText(), /not encrypted/);
  await p.screenshot({ path: join(shots, "sign-in-insecure.png") });
  await p.getByLabel("Connect without encryption anyway").check();
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByText("Drop files or folders here").waitFor();
  await p.context().close();
});

test("the backend contract scenario gives expected.json in the page too", async () => {
  const p = await page("?contract");
  const source = readFileSync(join(here, "..", "contract", "scenario.js"), "utf8");
  await p.addScriptTag({ type: "module", content: `${source}\nwindow.__scenario = scenario;` });
  await p.waitForFunction(() => typeof window.__scenario === "function");
  const steps = await p.evaluate(() =>
    window.__scenario(window.__ferry.backend, {
      server: "http://127.0.0.1:8480",
      username: "alice",
      password: "alice-password",
      other: { username: "bob", password: "bob-password" },
    }),
  );
  const expected = JSON.parse(readFileSync(join(here, "..", "contract", "expected.json"), "utf8"));
  assert.deepEqual(steps, expected);
  await p.context().close();
});

test("admins filter history by user, see the chart, and export CSV", async () => {
  const p = await page();
  await signIn(p, "admin", "admin-password");
  await p.getByRole("button", { name: "History" }).click();
  await p.getByRole("img", { name: "Uploads per day" }).waitFor();
  // Each bar is as tall as the count printed on it (the seeded days have equal counts).
  const bars = await p.locator("svg.chart rect").evaluateAll((rects) =>
    rects.map((r, i) => [Number(document.querySelectorAll("svg.chart text.count")[i].textContent), Number(r.getAttribute("height"))]),
  );
  const [most, tallest] = bars.reduce((m, b) => (b[0] > m[0] ? b : m), [0, 0]);
  assert.ok(bars.length > 1 && bars.every(([n, h]) => Math.abs(h - (tallest * n) / most) < 0.01), JSON.stringify(bars));
  await p.screenshot({ path: join(shots, "history-admin.png") });
  // Typing a filter asks the backend nothing; Apply does.
  await p.evaluate(() => {
    const backend = window.__ferry.backend;
    const history = backend.history.bind(backend);
    window.__asked = 0;
    backend.history = (query) => (window.__asked++, history(query));
  });
  await p.getByLabel("User").fill("bob");
  await p.getByLabel("Search").pressSequentially("xls");
  await p.getByLabel("Search").fill("");
  assert.equal(await p.evaluate(() => window.__asked), 0);
  await p.getByRole("button", { name: "Apply" }).click();
  await p.waitForFunction(() => [...document.querySelectorAll('[data-testid="history-row"] td:first-child')].every((td) => td.textContent === "bob"));
  const users = await p.locator('[data-testid="history-row"] td:first-child').allInnerTexts();
  assert.ok(users.length > 0 && users.every((u) => u === "bob"), JSON.stringify(users));
  const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Export CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\n");
  assert.equal(lines[0], SERVER_CSV_HEADER);
  assert.ok(lines.length > 1, csv);
  assert.ok(lines.slice(1).every((l) => l.split(",")[1] === "bob"), csv);
  await p.context().close();
});

test("folders and settings screens, and dark mode", async () => {
  const p = await page("", "dark");
  await signIn(p, "alice", "alice-password");
  await p.getByRole("button", { name: "Folders" }).click();
  await p.getByRole("button", { name: "Choose…" }).click();
  assert.equal(await p.getByTestId("chosen-folder").innerText(), "/home/alice/Photos");
  await p.getByLabel("Key prefix").fill("photos/");
  await p.getByRole("button", { name: "Watch folder" }).click();
  await p.getByRole("cell", { name: "/home/alice/Photos", exact: true }).waitFor();
  await p.screenshot({ path: join(shots, "folders-dark.png") });
  await p.getByRole("button", { name: "Settings" }).click();
  // Too small a part: the form refuses it before anything is saved.
  await p.getByLabel("Part size (MiB)").fill("2");
  await p.getByRole("button", { name: "Save", exact: true }).click();
  assert.equal(await p.getByLabel("Part size (MiB)").evaluate((i) => i.validity.rangeUnderflow), true);
  assert.equal(await p.getByText(/^Saved\./).count(), 0, "nothing was saved");
  await p.getByLabel("Part size (MiB)").fill("16");
  await p.getByRole("button", { name: "Save", exact: true }).click();
  await p.getByText(/^Saved\./).waitFor();
  await p.screenshot({ path: join(shots, "settings-dark.png") });
  await p.context().close();
});

test("network settings: before signing in, a proxy with a password kept apart, a refused address, Test connection", async () => {
  const p = await page();
  // Signed out: the sign-in screen offers the network settings, and tests the app server.
  await p.getByTestId("network-toggle").click();
  await p.getByRole("button", { name: "Test connection" }).click();
  const report = p.getByTestId("connection-report");
  await report.getByText("App server: answers").waitFor();
  await report.getByText("Storage: sign in to test it").waitFor();
  await p.getByTestId("network-toggle").click();
  await signIn(p, "alice", "alice-password");
  await p.getByRole("button", { name: "Settings" }).click();
  await p.getByTestId("proxy-mode").selectOption("manual");
  await p.getByLabel("Proxy address").fill("ftp://proxy.example:21");
  await p.getByRole("button", { name: "Save network settings" }).click();
  await report.getByText(/is not http:\/\/, https:\/\/, socks5:\/\/ or socks5h:\/\//).waitFor();
  await p.getByLabel("Proxy address").fill("http://proxy.example:3128");
  await p.getByLabel("Proxy user name").fill("corp\\alice");
  await p.getByLabel("Proxy password").fill("s3cret");
  await p.getByRole("button", { name: "Save network settings" }).click();
  await report.getByText(/^Saved\./).waitFor();
  assert.equal(await p.getByLabel("Proxy password").inputValue(), "", "the password is not kept in the page");
  await p.getByText("A password is kept in the system keychain").waitFor();
  // The other settings' Save keeps the network as saved.
  await p.getByRole("button", { name: "Save", exact: true }).click();
  await p.getByText(/^Saved\. Limits apply now/).waitFor();
  assert.equal(await p.getByLabel("Proxy address").inputValue(), "http://proxy.example:3128");
  await p.getByRole("button", { name: "Test connection" }).click();
  await report.getByText("App server: answers").waitFor();
  await report.getByText("Storage: answers").waitFor();
  await p.screenshot({ path: join(shots, "settings-network.png") });
  // Another proxy: the password of the first is not sent there.
  await p.getByLabel("Proxy address").fill("http://unreachable.example:3128");
  await p.getByRole("button", { name: "Save network settings" }).click();
  await report.getByText(/^Saved\./).waitFor();
  await p.getByText("The password is kept in the system keychain, never in Ferry's files.").waitFor();
  await p.getByRole("button", { name: "Test connection" }).click();
  await report.getByText(/App server: .*the proxy does not answer/).waitFor();
  await report.getByText(/Storage: reaching the storage: .*the proxy does not answer/).waitFor();
  await p.context().close();
});
