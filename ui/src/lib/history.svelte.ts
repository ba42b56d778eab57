// The History screen's state: the filters as typed, the query last applied (typing asks for
// nothing; Apply does), pages, and only the newest request's answer — an older one that comes
// back late is dropped.

import {
  BackendError,
  type Backend,
  type DayStats,
  type HistoryQuery,
  type UploadRecord,
  type UploadStatus,
} from "../backend";
import { said, type Said } from "./format";

export interface Filters {
  q: string;
  user: string;
  status: "" | UploadStatus;
  /** Local calendar days, YYYY-MM-DD, as the date inputs give them. */
  since: string;
  until: string;
}

/** The instant the local calendar day `day` (YYYY-MM-DD) starts, `after` days later, in
 * RFC 3339 — the server reads a bare date as a UTC day. */
export function localDayStart(day: string, after = 0): string | undefined {
  const parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!parts) return undefined;
  const [, year, month, date] = parts.map(Number) as [number, number, number, number];
  return new Date(year, month - 1, date + after).toISOString();
}

/** The query for `filters`: "To" takes in the whole of its day. */
export function toQuery(filters: Filters, cursor?: string): HistoryQuery {
  return {
    q: filters.q,
    user: filters.user || undefined,
    status: filters.status,
    since: localDayStart(filters.since),
    until: localDayStart(filters.until, 1),
    cursor,
    limit: 10,
  };
}

/** One bar of the uploads-per-day chart: its height follows the count printed on it. */
export interface Bar {
  day: string;
  count: number;
  bytes: number;
  height: number;
}

/** The chart's bars, `tallest` high for the busiest day. */
export function bars(stats: DayStats[], tallest = 80): Bar[] {
  const days = new Map<string, { count: number; bytes: number }>();
  for (const s of stats) {
    const d = days.get(s.day) ?? { count: 0, bytes: 0 };
    d.count += s.count;
    d.bytes += s.bytes;
    days.set(s.day, d);
  }
  const most = Math.max(1, ...[...days.values()].map((d) => d.count));
  return [...days.entries()].map(([day, d]) => ({ day, ...d, height: (d.count * tallest) / most }));
}

export class HistoryView {
  filters = $state<Filters>({ q: "", user: "", status: "", since: "", until: "" });
  rows = $state<UploadRecord[]>([]);
  stats = $state<DayStats[]>([]);
  /** Cursors of the pages before this one. */
  cursors = $state<string[]>([]);
  next = $state<string | null>(null);
  /** The server keeps no history (it only hands out credentials). */
  localOnly = $state(false);
  error = $state<Said | null>(null);
  private applied: Filters = { q: "", user: "", status: "", since: "", until: "" };
  /** Requests made; only the answer to the last is shown. */
  private asked = 0;

  /** `backend` and `admin` are read when asked (the screen's props may change). */
  constructor(
    readonly backend: () => Backend,
    readonly admin: () => boolean,
  ) {}

  /** Takes the filters as typed and reads their first page. */
  apply(): Promise<void> {
    this.applied = { ...this.filters };
    return this.load(undefined, []);
  }

  nextPage(): Promise<void> {
    if (!this.next) return Promise.resolve();
    return this.load(this.next, [...this.cursors, this.next]);
  }

  previousPage(): Promise<void> {
    const before = this.cursors.slice(0, -1);
    return this.load(before[before.length - 1], before);
  }

  /** The applied filters' rows as CSV (admins). */
  csv(): Promise<string> {
    return this.backend().historyCsv(toQuery(this.applied));
  }

  /** Reads the page at `cursor`; the pager moves to `cursors` (the pages before it) only
   * when this answer is the one shown. */
  private async load(cursor: string | undefined, cursors: string[]): Promise<void> {
    const ask = ++this.asked;
    const filters = this.applied;
    try {
      const page = await this.backend().history(toQuery(filters, cursor));
      const stats = this.admin() ? await this.backend().stats(toQuery(filters)) : [];
      if (ask !== this.asked) return;
      this.rows = page.items;
      this.cursors = cursors;
      this.next = page.next_cursor;
      this.stats = stats;
      this.error = null;
    } catch (err) {
      if (ask !== this.asked) return;
      if (err instanceof BackendError && err.code === "local_history_only") {
        this.localOnly = true;
        return;
      }
      this.error = said(err);
    }
  }
}
