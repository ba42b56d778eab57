import { afterEach, describe, expect, it, vi } from "vitest";
import { bytes, confirmedBy, count, countdown, dateTime, duration, percent, rate, signInMessage } from "./format";
import { setLocale } from "./i18n.svelte";

describe("format", () => {
  it("says who confirmed a history row", () => {
    expect(confirmedBy("provider")).toBe("provider callback");
    expect(confirmedBy("client")).toBe("client");
    expect(confirmedBy("store")).toBe("store's record");
  });

  it("writes sizes in binary units", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(48 * 1024 * 1024)).toBe("48 MiB");
    expect(bytes(-1)).toBe("—");
    expect(rate(0)).toBe("—");
    expect(rate(2 * 1024 * 1024)).toBe("2.0 MiB/s");
  });

  it("writes durations and countdowns", () => {
    expect(duration(65)).toBe("1:05");
    expect(duration(3723)).toBe("1:02:03");
    expect(duration(null)).toBe("—");
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(countdown("2026-01-01T00:01:05Z", now)).toBe("01:05");
    expect(countdown("2026-01-01T00:02:00Z", now)).toBe("02:00");
    // Beyond two minutes, whole minutes (rounded up): the text changes once a minute.
    expect(countdown("2026-01-01T00:14:31Z", now)).toBe("15 min");
    expect(countdown("2026-01-01T00:14:00Z", now)).toBe("14 min");
    expect(countdown("2025-12-31T23:59:00Z", now)).toBe("expired");
    expect(countdown(null, now)).toBe("—");
  });

  it("clamps progress and explains sign-in errors plainly", () => {
    expect(percent(50, 200)).toBe(25);
    expect(percent(500, 200)).toBe(100);
    expect(percent(0, 0)).toBe(100);
    expect(signInMessage("invalid_credentials", "x").text).toMatch(/Wrong username or password/);
    expect(signInMessage("network", "http://h").text).toMatch(/Cannot reach the server at http:\/\/h/);
    expect(signInMessage("rate_limited", "x").text).toMatch(/Too many failed attempts/);
    expect(signInMessage("keychain_unavailable", "x").text).toMatch(/keychain/);
    // A code without words of its own: what the backend said, and the code.
    expect(signInMessage("disk_full", "x", "the disk is full (/home)")).toEqual({
      text: "Signing in failed:",
      said: { code: "disk_full", message: "the disk is full (/home)" },
    });
    expect(signInMessage("internal", "x")).toEqual({ text: "Signing in failed (internal). Try again.", said: null });
  });

  describe("by the system's region", () => {
    afterEach(() => {
      vi.unstubAllGlobals();
      setLocale("en");
    });

    it("writes numbers and dates the region's way in the system's language", () => {
      vi.stubGlobal("navigator", { language: "en-GB" });
      expect(dateTime("2026-03-04T12:00:00Z")).toMatch(/^04\/03\/2026/);
      vi.stubGlobal("navigator", { language: "de-DE" });
      // German is not a language of the window: English, written the English way.
      expect(count(1234567)).toBe("1,234,567");
      setLocale("zh-CN");
      vi.stubGlobal("navigator", { language: "zh-TW" });
      expect(count(1234567)).toBe("1,234,567");
      expect(dateTime("2026-03-04T12:00:00Z")).toMatch(/^2026\/3\/4/);
    });

    it("takes a system language tag the formatters do not know as none (WebKit's `c`)", () => {
      for (const language of ["c", "en_US"]) {
        vi.stubGlobal("navigator", { language });
        expect(count(1234)).toBe("1,234");
        expect(bytes(1536)).toBe("1.5 KiB");
        expect(() => dateTime("2026-03-04T12:00:00Z")).not.toThrow();
      }
    });
  });
});

