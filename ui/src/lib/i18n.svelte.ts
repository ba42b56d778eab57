// The window's language: which catalog its sentences come from, and how numbers, sizes and
// dates are written. The backend says which language to use (the OS's, or the one chosen in
// Settings); screens read `text()` and the formatters, which follow a change at once.

import { en, type Catalog } from "./i18n/en";
import { zhCN } from "./i18n/zh-CN";

export type Locale = "en" | "zh-CN";

/** Every catalog by its tag. */
export const CATALOGS: Record<Locale, Catalog> = { en, "zh-CN": zhCN };

const current = $state<{ locale: Locale }>({ locale: "en" });

/** `tag` as a language the window has, or English: `zh`, `zh-CN`, `zh-Hans-CN`, `zh_TW` are
 * Simplified Chinese (the only Chinese it has). */
export function localeOf(tag: string | null | undefined): Locale {
  return tag && /^zh\b|^zh[-_]/i.test(tag) ? "zh-CN" : "en";
}

/** Switches the window to `locale` (and tells assistive technology through `<html lang>`). */
export function setLocale(locale: Locale): void {
  current.locale = locale;
  if (typeof document !== "undefined") document.documentElement.lang = locale;
}

export function locale(): Locale {
  return current.locale;
}

/** The sentences in the current language. */
export function text(): Catalog {
  return CATALOGS[current.locale];
}
