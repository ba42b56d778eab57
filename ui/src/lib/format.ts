// How numbers read in the UI.

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
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** A count with thousands grouped: `100,000`. */
export function count(n: number): string {
  return n.toLocaleString("en-US");
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
  if (left <= 0) return "expired";
  const m = Math.floor(left / 60);
  // Seconds only in the last two minutes: the text (and the window) changes once a minute
  // before that, so a window at rest is not repainted every second.
  if (left > 120) return `${Math.ceil(left / 60)} min`;
  return `${String(m).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
}

/** Percent done, 0–100. */
export function percent(sent: number, size: number): number {
  if (size <= 0) return 100;
  return Math.min(100, Math.max(0, Math.round((sent / size) * 100)));
}

/** Plain words for an error code on the sign-in screen; for a code it has no words of its own
 * for, what the backend said (with the code, for support). */
export function signInMessage(code: string, server: string, said = ""): string {
  switch (code) {
    case "invalid_credentials":
      return "Wrong username or password.";
    case "network":
      return `Cannot reach the server at ${server}. Check the address and your connection.`;
    case "rate_limited":
      return "Too many failed attempts. Wait a few minutes, then try again.";
    case "keychain_unavailable":
      return "This computer has no keychain Ferry can use to keep your sign-in safe.";
    case "insecure_server":
      return `${server} is not encrypted (http://). Use https://, or tick "Connect without encryption anyway".`;
    case "invalid_server":
      return "That is not a server address. Give it as https://host[:port].";
    default:
      return said ? `Signing in failed: ${said} (${code})` : `Signing in failed (${code}). Try again.`;
  }
}

/** Who vouched for a history row, in words: the store's callback, the uploader, or only the store's own record. */
export function confirmedBy(by: "client" | "store" | "provider"): string {
  switch (by) {
    case "provider":
      return "provider callback";
    case "client":
      return "client";
    case "store":
      return "store's record";
  }
}

/** An error in words for people: the backend's sentence, or what was thrown. */
export function words(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
