// Server addresses as the sign-in form sees them. The rule itself is enforced in Rust
// (`src-tauri/src/server_address.rs`); the form uses this to ask for consent up front.

/** Whether `host` (a URL's hostname) is this computer: localhost, 127.0.0.0/8 or ::1. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::1";
}

/** Whether `address` is plain http:// to another computer. */
export function plainHttpElsewhere(address: string): boolean {
  try {
    const url = new URL(address);
    return url.protocol === "http:" && !isLoopback(url.hostname);
  } catch {
    return false;
  }
}
