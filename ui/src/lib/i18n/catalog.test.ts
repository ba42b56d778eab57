// The catalogs against each other and against the codes the backends send: every sentence of
// one is in the other (the types say so for the fixed parts; this also covers the maps keyed by
// code), and every error code the engine, the app server and the desktop can give has a
// Chinese sentence — read from their sources, so a new code without one fails here.

import { describe, expect, it } from "vitest";
import { en } from "./en";
import { zhCN } from "./zh-CN";

// The sources that give codes to the window, as text (read by Vite at test time).
const engine: Record<string, string> = import.meta.glob("../../../../crates/ferry-engine/src/**/*.rs", { query: "?raw", import: "default", eager: true });
const protocol: Record<string, string> = import.meta.glob("../../../../crates/ferry-protocol/src/lib.rs", { query: "?raw", import: "default", eager: true });
const desktop: Record<string, string> = import.meta.glob("../../../../src-tauri/src/**/*.rs", { query: "?raw", import: "default", eager: true });

/** Every path to a sentence in `catalog`: `uploads.drop`, `signIn.errors.network`, …. */
function paths(catalog: object, prefix = ""): string[] {
  return Object.entries(catalog).flatMap(([key, value]) =>
    typeof value === "object" && value !== null ? paths(value, `${prefix}${key}.`) : [`${prefix}${key}`],
  );
}

/** The codes an error can carry to the window, as the sources spell them. */
function codes(): Set<string> {
  const found = new Set<string>();
  const add = (text: string, pattern: RegExp) => {
    for (const m of text.matchAll(pattern)) if (m[1]) found.add(m[1]);
  };
  for (const [path, text] of Object.entries(engine)) {
    if (path.endsWith("tests.rs")) continue;
    if (path.endsWith("/error.rs") && text.includes("pub fn code(&self)")) {
      add(text.slice(text.indexOf("pub fn code(&self)"), text.indexOf("pub fn is_transient")), /=> "([a-z_]+)"/g);
    }
    // The engine's per-file codes: `code: "exists"`, `… => ("file_missing", …)`.
    add(text, /\bcode: "([a-z_]+)"/g);
    add(text, /=> \("([a-z_]+)", /g);
  }
  for (const text of Object.values(protocol)) {
    const variants = text.slice(text.indexOf("pub enum ErrorCode"), text.indexOf("impl ErrorCode"));
    for (const m of variants.matchAll(/^\s{4}([A-Z][A-Za-z]+),$/gm)) {
      found.add((m[1] ?? "").replace(/[A-Z]/g, (c: string, i: number) => (i ? "_" : "") + c.toLowerCase()));
    }
  }
  for (const text of Object.values(desktop)) {
    add(text, /CommandError::(?:new|worded)\(\s*(?:[a-z_.()]+,\s*)?"([a-z_]+)"/g);
  }
  found.delete("unknown");
  return found;
}

describe("the catalogs", () => {
  it("have the same sentences in both languages", () => {
    // English has no sentences of its own for error codes: the engine's say more.
    const fixed = (p: string) => !p.startsWith("errors.");
    expect(paths(zhCN).filter(fixed).sort()).toEqual(paths(en).filter(fixed).sort());
    for (const path of paths(zhCN)) {
      const value = path.split(".").reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], zhCN);
      expect(value, path).not.toBe("");
    }
  });

  it("give every error code a Chinese sentence", () => {
    const all = codes();
    // The sources were read: these are certainly among them.
    for (const known of ["network", "exists", "file_missing", "invalid_credentials", "invalid_settings", "broker_refused"]) {
      expect(all.has(known), known).toBe(true);
    }
    const missing = [...all].filter((code) => !(code in zhCN.errors)).sort();
    expect(missing).toEqual([]);
  });
});
