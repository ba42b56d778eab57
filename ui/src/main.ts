import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { createBackend } from "./backend";
import { AppState } from "./lib/app.svelte";
import { said } from "./lib/format";
import { localeOf, setLocale, text } from "./lib/i18n.svelte";

const target = document.getElementById("app");
let backend;
try {
  backend = await createBackend();
} catch (err) {
  if (target) target.textContent = err instanceof Error ? err.message : String(err);
  throw err;
}
// The language before the first word is shown: the one chosen in Settings, or the OS's.
setLocale(await backend.locale().catch(() => localeOf(navigator.language)));
const state = new AppState(backend);
// The contract scenario (ui/contract/) drives the same backend object the screens use; the
// page tests read the sentences of the language shown.
Object.assign(window, { __ferry: { backend, text } });
// The window shows at once ("Checking your sign-in…"), then what the check found.
if (target) mount(App, { target, props: { app: state } });
state.start().catch((err: unknown) => (state.startError = said(err)));
