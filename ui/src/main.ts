import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { createBackend } from "./backend";
import { AppState } from "./lib/app.svelte";

const backend = await createBackend();
const state = new AppState(backend);
await state.start();
// The contract scenario (ui/contract/) drives the same backend object the screens use.
Object.assign(window, { __ferry: { backend } });
const target = document.getElementById("app");
if (target) mount(App, { target, props: { app: state } });
