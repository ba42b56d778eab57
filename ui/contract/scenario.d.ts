// Types of scenario.js, which stays plain JavaScript so the WebDriver test can send it as is.
import type { Backend } from "../src/backend";

export type Shape = string | Shape[] | { [field: string]: Shape };
export interface Step {
  step: string;
  ok?: Shape;
  error?: string;
  [kept: string]: unknown;
}
export function shape(value: unknown): Shape;
export interface Account {
  username: string;
  password: string;
}
export function scenario(backend: Backend, env: { server: string; other: Account } & Account): Promise<Step[]>;
