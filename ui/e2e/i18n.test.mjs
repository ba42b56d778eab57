// Both languages on every screen: a browser set to Simplified Chinese gets the window in Chinese
// (the demo's stand-in for the OS's language) and one set to English gets it in English; on
// every screen of the tour nothing is left in the other language, no sentence is missing
// ("undefined" where one should be), and the language can be switched in Settings.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { say, shots, signIn, start, tour, violations } from "./harness.mjs";

let harness;

before(async () => {
  harness = await start();
});

after(async () => {
  await harness?.stop();
});

/** Words that are the same in every language: the product, units, protocols, file formats,
 * and the demo's account names (data, not sentences). */
const SAME_IN_EVERY_LANGUAGE = new Set([
  "Ferry", "B", "KiB", "MiB", "GiB", "TiB", "s", "CSV", "PEM", "CA", "ID", "HTTP", "HTTPS", "HTTPS_PROXY", "NO_PROXY",
  "SOCKS", "STS", "alice", "admin", "bob",
]);

/** Text on the page (and the labels and placeholders of its controls) that is not in the page's
 * language: English words on a Chinese page, Chinese on an English one, and the marks of a
 * missing sentence on either. Text marked as another language (`lang`, such as the engine's
 * English sentences or the language menu's own names) and text marked `translate="no"` (keys,
 * patterns) is left out. */
async function foreign(p) {
  return p.evaluate((same) => {
    const page = document.documentElement.lang;
    const skipped = (el) => {
      const marked = el.closest("[lang]");
      return (marked && marked.getAttribute("lang") !== page) || el.closest('[translate="no"]') !== null;
    };
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (el && !skipped(el) && node.textContent.trim()) texts.push(node.textContent);
    }
    for (const el of document.querySelectorAll("[aria-label], [placeholder], [title]")) {
      if (skipped(el)) continue;
      for (const name of ["aria-label", "placeholder", "title"]) if (el.getAttribute(name)) texts.push(el.getAttribute(name));
    }
    const found = [];
    for (const text of texts) {
      if (/undefined|\[object |NaN/.test(text)) found.push(`missing: ${text.trim()}`);
      if (page === "en" && /[\u3400-\u9fff\u3000-\u303f\uff01-\uff60]/.test(text)) found.push(`Chinese: ${text.trim()}`);
      if (page !== "zh-CN") continue;
      // Chinese takes full-width punctuation: an ASCII comma beside a Chinese word is English's.
      if (/[\u3400-\u9fff]\s*[,;?!]|[,;?!]\s*[\u3400-\u9fff]/.test(text)) found.push(`ASCII punctuation: ${text.trim()}`);
      // A word with a dot, slash, colon, digit, @ or _ is a name (a file, a path, an address):
      // words are split where a sentence's punctuation is, names only at spaces.
      let rest = text;
      for (const name of text.split(/\s+/)) if (/[./:@_\d\\]/.test(name)) rest = rest.replace(name, " ");
      for (const word of rest.split(/[\s,.;:!?，、：；。？！（）()·—–…"“”\u3400-\u9fff]+/)) {
        if (!word || same.includes(word)) continue;
        if (/[A-Za-z]/.test(word)) found.push(`English: ${word} (in "${text.trim()}")`);
      }
    }
    return [...new Set(found)];
  }, [...SAME_IN_EVERY_LANGUAGE]);
}

for (const [locale, lang] of [["zh-CN", "zh-CN"], ["en-US", "en"]]) {
  test(`every screen speaks ${lang} when the system does, with no sentence missing`, async () => {
    // The folder the tour watches is gone: its error is said in the page's language too.
    const p = await harness.page("?failing=stuck.bin:1000&unwatchable=/home/alice/Photos", "light", locale);
    await p.getByRole("button", { name: await say(p, "signIn.submit"), exact: true }).waitFor();
    assert.equal(await p.evaluate(() => document.documentElement.lang), lang);
    const found = {};
    await tour(p, async (screen) => {
      found[screen] = await foreign(p);
      if (screen === "folders" && lang === "zh-CN") {
        const row = await p.getByRole("row").filter({ hasText: "/home/alice/Photos" }).innerText();
        const sentence = await say(p, "errors.folder_missing");
        if (!row.includes(sentence)) found[screen].push(`the folder's error without its sentence: ${row}`);
      }
      // The Chinese page passes the accessibility audit too (its `lang` marks included).
      if (lang === "zh-CN") found[screen].push(...(await violations(p)));
      if (lang === "zh-CN" && ["uploads, retrying and done", "uploads, a file already at the store", "history, admin with chart"].includes(screen)) {
        await p.screenshot({ path: join(shots, `zh-${screen.replace(/[ ,]+/g, "-")}.png`) });
      }
    });
    await p.context().close();
    const failing = Object.entries(found).filter(([, v]) => v.length > 0);
    assert.ok(Object.keys(found).length >= 15, `the tour saw every screen: ${Object.keys(found)}`);
    assert.equal(failing.length, 0, failing.map(([screen, v]) => `${screen}:\n  ${v.join("\n  ")}`).join("\n"));
  });
}

test("the language chosen in Settings applies at once, to every word on the page", async () => {
  const p = await harness.page("", "light", "en-US");
  await signIn(p, "alice", "alice-password");
  await p.getByRole("button", { name: "Settings" }).click();
  await p.getByTestId("language").selectOption("zh-CN");
  await p.getByRole("button", { name: "Save", exact: true }).click();
  // The whole window, not only the screen that changed it.
  await p.getByRole("button", { name: "上传", exact: true }).waitFor();
  await p.getByText("已保存。").waitFor();
  assert.equal(await p.evaluate(() => document.documentElement.lang), "zh-CN");
  assert.match(await p.getByTestId("expiry").innerText(), /凭证剩余有效期/);
  assert.deepEqual(await foreign(p), []);
  await p.getByRole("button", { name: "上传", exact: true }).click();
  assert.equal(await p.getByText("将文件或文件夹拖放到这里").count(), 1);
  assert.deepEqual(await foreign(p), []);
  await p.getByRole("button", { name: "设置", exact: true }).click();
  await p.getByTestId("language").selectOption("en");
  await p.getByRole("button", { name: "保存", exact: true }).click();
  await p.getByRole("button", { name: "Uploads", exact: true }).waitFor();
  assert.equal(await p.evaluate(() => document.documentElement.lang), "en");
  assert.deepEqual(await foreign(p), []);
  await p.context().close();
});

for (const [locale, lang] of [["zh-CN", "zh-CN"], ["en-US", "en"]]) {
  test(`a credential refresh that fails is explained in ${lang}, with its code, then tried again`, async () => {
    // Grants of 4 s: the first refresh starts at about 2 s and cannot reach the app server.
    const p = await harness.page("?ttl=4&refreshFails=1", "light", locale);
    await signIn(p, "alice", "alice-password");
    const failed = await say(p, "status.refreshFailed");
    const bar = p.getByTestId("refresh");
    await bar.getByText(failed).waitFor({ timeout: 8_000 });
    const shown = await bar.innerText();
    // The engine's own sentence is English; a Chinese window says it in Chinese first, with
    // the code, and marks the English as English.
    if (lang === "zh-CN") {
      const sentence = await say(p, "errors.network");
      assert.ok(shown.includes(sentence), `the sentence for its code: ${shown}`);
      assert.ok(shown.includes("network"), `its code: ${shown}`);
      assert.equal(await bar.locator('[lang="en"]').count(), 1, shown);
    }
    assert.ok(shown.includes("could not reach the app server"), shown);
    assert.deepEqual(await foreign(p), []);
    assert.deepEqual(await violations(p), []);
    // Tried again 2 s later, and refreshed.
    await bar.getByText(await say(p, "status.refreshing")).waitFor({ timeout: 8_000 });
    await bar.getByText(failed).waitFor({ state: "detached", timeout: 8_000 });
    await p.context().close();
  });
}
