/**
 * Usage counted per 3-minute UTC slice (`tally-sdk/src/usage.rs`). The open slice accumulates;
 * closing it turns its counters into reports whose ids are fixed once, so however often a report
 * is resent the server counts it once.
 */

import { ErrorCode, TallyError } from "./errors.js";
import { uuidV7 } from "./ids.js";
import {
  MAX_FEATURE_LEN,
  MAX_FEATURES_PER_REPORT,
  sliceEnd,
  sliceOf,
  type UnixSeconds,
  type UsageReport,
} from "./wire.js";

/** Unsent reports whose slice ended longer ago than this are dropped. */
export const RETENTION_SECONDS = 30 * 86_400;

export interface OpenSlice {
  slice: number;
  counts: Record<string, number>;
}

/** Everything not yet acknowledged by a server, kept as the `usage` entry. */
export interface UsageBook {
  open?: OpenSlice;
  /** Closed reports, oldest first. */
  pending: UsageReport[];
}

export function emptyBook(): UsageBook {
  return { pending: [] };
}

/** Refuses feature names the server would refuse, before they are stored. */
export function checkFeature(feature: string): void {
  const ok =
    feature.length > 0 &&
    feature.length <= MAX_FEATURE_LEN &&
    [...feature].every((c) => c >= "!" && c <= "~");
  if (!ok) {
    throw new TallyError(
      ErrorCode.InvalidInput,
      `feature ${JSON.stringify(feature)}: use 1 to ${MAX_FEATURE_LEN} printable ASCII characters without spaces`,
    );
  }
}

/** Adds `count` to `feature` in the slice of `now`, closing an open slice of another time. */
export function record(book: UsageBook, now: UnixSeconds, feature: string, count: number): void {
  const slice = sliceOf(now);
  if (book.open !== undefined && book.open.slice !== slice) closeOpen(book);
  book.open ??= { slice, counts: {} };
  const before = book.open.counts[feature] ?? 0;
  // Counts stay exact integers: they saturate instead of losing precision.
  book.open.counts[feature] = Math.min(before + count, Number.MAX_SAFE_INTEGER);
}

/**
 * Turns the open slice's counters into pending reports with new ids (several when it has more
 * features than one report may carry).
 */
export function closeOpen(book: UsageBook): void {
  const open = book.open;
  if (open === undefined) return;
  delete book.open;
  const features = Object.keys(open.counts).sort();
  for (let at = 0; at < features.length; at += MAX_FEATURES_PER_REPORT) {
    const counts: Record<string, number> = {};
    for (const f of features.slice(at, at + MAX_FEATURES_PER_REPORT)) {
      counts[f] = open.counts[f] ?? 0;
    }
    book.pending.push({ report_id: uuidV7(Date.now()), slice: open.slice, counts });
  }
}

/** Drops pending reports whose slice ended more than 30 days before `now`; returns how many. */
export function expire(book: UsageBook, now: UnixSeconds): number {
  const before = book.pending.length;
  book.pending = book.pending.filter((r) => now - sliceEnd(r.slice) <= RETENTION_SECONDS);
  return before - book.pending.length;
}

/** Removes the reports whose ids are in `done`; returns how many. */
export function acknowledge(book: UsageBook, done: Set<string>): number {
  const before = book.pending.length;
  book.pending = book.pending.filter((r) => !done.has(r.report_id));
  return before - book.pending.length;
}

/** Reports waiting for a server, counting the open slice as the one report it will make. */
export function waiting(book: UsageBook): number {
  const open = book.open !== undefined && Object.keys(book.open.counts).length > 0 ? 1 : 0;
  return book.pending.length + open;
}
