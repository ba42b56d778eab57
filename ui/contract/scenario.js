// The contract between the UI's two backends: one scenario, run through the `Backend` interface
// against MemoryBackend (vitest in Node, Playwright in Chromium) and against the real desktop app
// with a real server (the WebDriver test in tests/e2e/desktop.rs). Each step's outcome is kept
// as a shape (types of fields, not their values) or an error code, plus the few values that must
// agree; every run must give `expected.json`.
//
// Plain JavaScript with no imports, so the WebDriver test can send this file's text into the
// app's webview as it is.

/** The shape of a value: its type, or for objects the shapes of their fields. */
export function shape(value) {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = shape(value[key]);
    return out;
  }
  return typeof value;
}

/**
 * Runs the scenario. `env`: `{ server, username, password, other: { username, password } }`:
 * two plain users with no uploads yet, signed out, with no queue. `pickFiles` must give exactly
 * one file (the harness chooses it in the dialog), and the store must answer 503 to its first
 * five PUTs (the harness arranges it), so that its first attempt fails after four announced
 * request retries and the file waits for its second attempt.
 */
export async function scenario(backend, env) {
  const steps = [];
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  async function step(name, call, keep = () => ({})) {
    try {
      const value = await call();
      steps.push({ step: name, ok: shape(value), ...keep(value) });
      return value;
    } catch (err) {
      steps.push({ step: name, error: err && err.code ? err.code : `not a backend error: ${err}` });
      return undefined;
    }
  }
  async function until(what, check, ms = 60000) {
    const end = Date.now() + ms;
    for (;;) {
      const value = await check();
      if (value) return value;
      if (Date.now() > end) throw Object.assign(new Error(what), { code: `timeout: ${what}` });
      await sleep(200);
    }
  }
  const signIn = (over) => ({
    server: env.server,
    username: env.username,
    password: env.password,
    remember: false,
    memoryOnly: true,
    allowInsecure: false,
    ...over,
  });

  await step("restore signed out", () => backend.restore(), (s) => ({ user: s.user, online: s.online }));
  await step("queue signed out", () => backend.queue());
  await step("sign in over http to another host", () =>
    backend.signIn(signIn({ server: "http://files.example.com:8480" })),
  );
  await step("sign in to a non-address", () => backend.signIn(signIn({ server: "files.example.com" })));
  await step("sign in with a wrong password", () => backend.signIn(signIn({ password: "wrong-password" })));
  await step("sign in", () => backend.signIn(signIn()), (u) => ({ name: u.name, role: u.role }));
  await step("restore signed in", () => backend.restore(), (s) => ({ online: s.online }));
  // A grant in hand and no refresh under way (the desktop may be refreshing when the first
  // grant arrives: what the step keeps must not depend on that moment).
  await step("credentials", () => until("a grant", async () => {
    const c = await backend.credentials();
    return c.expiresAt && !c.refreshing ? c : null;
  }, 20000), (c) => ({ refreshing: c.refreshing, lastError: c.lastError }));
  await step("settings", () => backend.settings());
  await step("save settings with 2 MiB parts", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, partSizeMiB: 2 });
  });
  await step("save settings with a bandwidth of 0", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, bandwidthMiBs: 0 });
  });
  await step("save settings with a word for a number", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, files: "four" });
  });
  await step("save settings with an unknown rule for files already at the store", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, onConflict: "replace" });
  });
  await step("save settings in Chinese", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, language: "zh-CN" });
  });
  await step("the language after choosing Chinese", () => backend.locale(), (locale) => ({ locale }));
  await step("save settings with an unknown language", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, language: "fr" });
  });
  await step("save settings in the system's language", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, language: "system" });
  });
  await step("save settings with a proxy that is not one", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, proxyMode: "manual", proxyUrl: "ftp://proxy.example:21" });
  });
  await step("test the connection", () => backend.checkConnection(), (r) => ({
    server: r.server.ok,
    store: r.store && r.store.ok,
  }));
  await step("decide with no file waiting", () => backend.decide(null, "rename"), (n) => ({ queued: n }));
  await step("decide by an unknown rule", () => backend.decide(null, "explode"));
  await step("folders", () => backend.folders());
  await step("watch a folder nobody picked", () => backend.addFolder({ pick: 424242, prefix: "", excludes: [] }));
  await step("queue by an unknown pick", () => backend.enqueue([424242]));
  await step("unknown control", () => backend.control("explode", null));
  // Listening starts well before the upload: the desktop's listener is set up asynchronously.
  const retries = [];
  const stopListening = backend.onEvent((e) => {
    if (e.type === "retrying") retries.push(e);
  });
  const picked = await step("pick files", () => backend.pickFiles(), (p) => ({ names: p.map((f) => f.name) }));
  const ids = (picked ?? []).map((p) => p.id);
  await step("queue the picked file", () => backend.enqueue(ids));
  await step("queue the same pick again", () => backend.enqueue(ids));
  const file = await retryScheduled(backend, step, until, retries);
  stopListening();
  await step("totals while a retry is scheduled", () => backend.queue(), (p) => ({
    totals: {
      files: p.totals.files,
      active: p.totals.active,
      retrying: p.totals.retrying,
      failed: p.totals.failed,
      uploading: p.totals.uploading.length,
    },
  }));
  await step("pause the file waiting for its retry", () => backend.control("pause", [file]));
  await step("totals with the file paused", () => backend.queue(), (p) => ({
    totals: { paused: p.totals.paused, retrying: p.totals.retrying, failed: p.totals.failed, active: p.totals.active },
  }));
  await step("sign in as another account", () =>
    backend.signIn(signIn({ username: env.other.username, password: env.other.password })),
    (u) => ({ name: u.name }),
  );
  const rows = (page) => page.items.map((i) => ({ name: i.name, state: i.state, mine: i.mine, owner: i.owner }));
  await step("another account's queue", () => backend.queue(), (q) => ({ rows: rows(q) }));
  await step("files waiting as another account", () => backend.queue(), (p) => ({ waiting: p.waitingForOthers }));
  await step("resume another account's file", () => backend.control("resume", [file]));
  await step("resume all as another account", () => backend.control("resume", null));
  await step("another account's file after resume all", () => backend.queue(), (q) => ({ rows: rows(q) }));
  await step("sign out of the other account", () => backend.signOut());
  await step("sign in again", () => backend.signIn(signIn()), (u) => ({ name: u.name }));
  await step("retry failed files", () => backend.control("retry", null));
  await step("the paused file after retrying failed ones", () => backend.queue(), (q) => ({ rows: rows(q) }));
  await step("resume the paused file", () => backend.control("resume", [file]));
  await step("uploaded", () => until("confirmed", async () => {
    const { items } = await backend.queue();
    return items.length && items.every((i) => i.state === "confirmed") ? items : null;
  }), (q) => ({ states: q.map((i) => i.state), names: q.map((i) => i.name) }));
  await step("queue totals", () => backend.queue(), (p) => ({
    matching: p.matching,
    totals: { files: p.totals.files, done: p.totals.done, finished: p.totals.finished, active: p.totals.active },
    sentIsSize: p.totals.sent === p.totals.size && p.totals.size > 0,
  }));
  await step("queue beyond its last page", () => backend.queue({ offset: 5000, limit: 100 }), (p) => ({
    offset: p.offset,
    names: p.items.map((i) => i.name),
  }));
  await step("failed files only", () => backend.queue({ show: "failed" }), (p) => ({ matching: p.matching }));
  await step("queue by an unknown filter", () => backend.queue({ show: "everything" }));
  await step("queue pages of 1000 rows", () => backend.queue({ limit: 1000 }));
  await step("clear finished", () => backend.clearFinished(), (n) => ({ cleared: n }));
  await step("queue after clearing", () => backend.queue(), (p) => ({ matching: p.matching, finished: p.totals.finished }));
  await step("finished files after clearing", () => backend.queue({ show: "finished" }), (p) => ({ matching: p.matching }));
  await step("files waiting for others", () => backend.queue(), (p) => ({ waiting: p.waitingForOthers }));
  await step("history", () => backend.history({ limit: 10 }), (p) => ({
    first: p.items[0] && { name: p.items[0].name, user: p.items[0].user, status: p.items[0].status },
  }));
  await step("history beyond the page limit", () => backend.history({ limit: 100000 }));
  await step("someone else's history", () => backend.history({ user: "somebody-else", limit: 10 }));
  await step("history CSV as a user", () => backend.historyCsv({}));
  await step("statistics as a user", () => backend.stats({}));
  await step("sign out", () => backend.signOut());
  await step("restore after signing out", () => backend.restore(), (s) => ({ user: s.user, online: s.online }));
  return steps;
}

/**
 * Waits until the queued file's first attempt has failed and its second is scheduled; keeps
 * the row and the retries announced so far (`retries`, filled by a listener). Returns the
 * file's id.
 */
async function retryScheduled(backend, step, until, retries) {
  const queue = await step(
    "a retry is scheduled",
    () => until("a scheduled retry", async () => {
      const { items: queue } = await backend.queue();
      return queue.length === 1 && queue[0].retryAt && retries.length >= 5 ? queue : null;
    }, 30000),
    ([i]) => ({
      row: {
        state: i.state,
        attempts: i.attempts,
        maxAttempts: i.maxAttempts,
        mine: i.mine,
        owner: i.owner,
        error: i.error && i.error.code,
      },
      retries: retries.map((e) => ({
        ofThisFile: e.file_id === i.id,
        operation: e.operation,
        attempt: e.attempt,
        of: e.max_attempts,
        error: e.error.code,
        waitMs: typeof e.retry_in_ms,
      })),
    }),
  );
  return queue ? queue[0].id : -1;
}
