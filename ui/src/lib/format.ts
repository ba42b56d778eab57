// How numbers, sizes, times and errors read in the UI, in the window's language.

import { BackendError, type ConfirmedBy } from "../backend";
import { locale, text } from "./i18n.svelte";

/** The tag numbers and dates are written by: the system's own (its region's way, `en-GB`,
 * `zh-TW`) when it is of the window's language, else the window's language's. */
function region(): string {
  const system = typeof navigator === "undefined" ? undefined : navigator.language;
  const same = system?.split(/[-_]/)[0]?.toLowerCase() === locale().split("-")[0];
  return system && same && known(system) ? system : locale();
}

/** Whether `tag` is a language tag the formatters take (WebKit says `c` in the C locale). */
function known(tag: string): boolean {
  try {
    return Intl.NumberFormat.supportedLocalesOf(tag).length > 0;
  } catch {
    return false;
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `1536` → `1.5 KiB`. */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "—";
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${count(value)} B`;
  const digits = value < 10 ? 1 : 0;
  const shown = value.toLocaleString(region(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${shown} ${UNITS[unit]}`;
}

/** A count with thousands grouped as the language does: `100,000`. */
export function count(n: number): string {
  return n.toLocaleString(region());
}

/** A date and time, as the language writes them. */
export function dateTime(iso: string): string {
  return new Date(iso).toLocaleString(region());
}

/** A time of day, as the language writes it. */
export function timeOfDay(iso: string): string {
  return new Date(iso).toLocaleTimeString(region());
}

/** Bytes per second as `12 MiB/s`. */
export function rate(n: number): string {
  return n > 0 ? `${bytes(n)}/s` : "—";
}

/** Seconds as `1:05`, `1:02:03`, or `—`. */
export function duration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs) || secs < 0) return "—";
  const s = Math.floor(secs);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** `mm:ss` until `iso` from `now` in the last two minutes, whole minutes before that; `expired`
 * once past. */
export function countdown(iso: string | null, now: number): string {
  if (!iso) return "—";
  const left = Math.floor((Date.parse(iso) - now) / 1000);
  if (left <= 0) return text().time.expired;
  const m = Math.floor(left / 60);
  // Seconds only in the last two minutes: the text (and the window) changes once a minute
  // before that, so a window at rest is not repainted every second.
  if (left > 120) return text().time.minutes(Math.ceil(left / 60));
  return `${String(m).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
}

/** Percent done, 0–100. */
export function percent(sent: number, size: number): number {
  if (size <= 0) return 100;
  return Math.min(100, Math.max(0, Math.round((sent / size) * 100)));
}

/** Plain words for an error code on the sign-in screen; for a code it has no words of its own
 * for, what the backend said (`said`, with the code, for support). */
export function signInMessage(code: string, server: string, said = ""): { text: string; said: Said | null } {
  const t = text().signIn;
  const known = t.errors[code];
  if (known) return { text: known(server), said: null };
  return said ? { text: t.failedSaid, said: { code, message: said } } : { text: t.failed(code), said: null };
}

/** Who vouched for a history row, in words: the store's callback, the uploader, or only the store's own record. */
export function confirmedBy(by: ConfirmedBy): string {
  return text().history.confirmedBy[by];
}

/** An error in words for people: the backend's sentence, or what was thrown. */
function words(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What the backend said when something failed: its stable code and its own sentence, and
 * the language that sentence is in (the engine's are English; the desktop words its own in
 * the window's language). In another language than the window's, the window puts its own
 * sentence for the code before it (see `ErrorText.svelte`). */
export interface Said {
  code: string;
  message: string;
  lang?: string;
}

/** `err` as a `Said`; what is not the backend's error is `internal`. */
export function said(err: unknown): Said {
  if (err instanceof BackendError) return { code: err.code, message: err.message, lang: err.lang };
  return { code: "internal", message: words(err) };
}

/** The window's sentence for `code`, said before the backend's own (none in English, whose
 * backend sentences say more). */
export function codeSentence(code: string): string | null {
  if (locale() === "en") return null;
  const t = text();
  return t.errors[code] ?? t.errorUnknown;
}
