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
 * Runs the scenario. `env`: `{ server, username, password }` of a plain user with no uploads
 * yet, signed out, with no queue. `pickFiles` must give exactly one file (the harness chooses
 * it in the dialog), named `env.fileName`.
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
  await step("credentials", () => until("a grant", async () => {
    const c = await backend.credentials();
    return c.expiresAt ? c : null;
  }, 20000), (c) => ({ refreshing: c.refreshing, lastError: c.lastError }));
  await step("settings", () => backend.settings());
  await step("save settings with 2 MiB parts", async () => {
    const s = await backend.settings();
    return backend.saveSettings({ ...s, partSizeMiB: 2 });
  });
  await step("folders", () => backend.folders());
  await step("watch a folder nobody picked", () => backend.addFolder({ pick: 424242, prefix: "", excludes: [] }));
  await step("queue by an unknown pick", () => backend.enqueue([424242]));
  await step("unknown control", () => backend.control("explode", null));
  const picked = await step("pick files", () => backend.pickFiles(), (p) => ({ names: p.map((f) => f.name) }));
  const ids = (picked ?? []).map((p) => p.id);
  await step("queue the picked file", () => backend.enqueue(ids));
  await step("queue the same pick again", () => backend.enqueue(ids));
  await step("uploaded", () => until("confirmed", async () => {
    const queue = await backend.queue();
    return queue.length && queue.every((i) => i.state === "confirmed") ? queue : null;
  }), (q) => ({ states: q.map((i) => i.state), names: q.map((i) => i.name) }));
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
