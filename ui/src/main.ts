import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { createBackend } from "./backend";
import { AppState } from "./lib/app.svelte";
import { words } from "./lib/format";

const target = document.getElementById("app");
let backend;
try {
  backend = await createBackend();
} catch (err) {
  if (target) target.textContent = err instanceof Error ? err.message : String(err);
  throw err;
}
const state = new AppState(backend);
// The contract scenario (ui/contract/) drives the same backend object the screens use.
Object.assign(window, { __ferry: { backend } });
// The window shows at once ("Checking your sign-in…"), then what the check found.
if (target) mount(App, { target, props: { app: state } });
state.start().catch((err: unknown) => (state.startError = words(err)));
