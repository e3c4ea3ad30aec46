/**
 * What a product starts once (`tally-sdk/src/background.rs`): the grant renewed before it
 * lapses (a concurrent seat every few minutes, a per-active-device grant at midnight UTC, others
 * within a day) and usage reports sent at start and then every interval, so the page only
 * records usage and asks `check()`. A last flush runs when it is stopped.
 */

import type { TallyClient } from "./client.js";
import type { Clock } from "./clock.js";
import type { TallyError } from "./errors.js";
import type { UnixSeconds } from "./wire.js";

/** Seconds between reports unless configured: one slice. */
export const DEFAULT_REPORT_INTERVAL_SECONDS = 180;
/** How long to wait after a renewal no server answered before trying again. */
const RETRY_UNANSWERED_SECONDS = 30;
/** How long to wait after a server refused the renewal (the license is used up, ended, …). */
const RETRY_REFUSED_SECONDS = 900;

export interface BackgroundOptions {
  /** Seconds between usage reports (default 180). */
  reportEverySeconds?: number;
  /** How often the clock is looked at, in milliseconds (default 1000). */
  pollMs?: number;
  /** Told of every failed renewal or flush (the reports stay for the next attempt). */
  onError?: (e: unknown) => void;
}

export interface Background {
  /** Stops the loop after a last flush. */
  stop(): Promise<void>;
}

export function startBackground(
  client: TallyClient,
  clock: Clock,
  options: BackgroundOptions = {},
): Background {
  const every = Math.max(1, options.reportEverySeconds ?? DEFAULT_REPORT_INTERVAL_SECONDS);
  const onError = options.onError ?? (() => undefined);
  let nextFlush: UnixSeconds = clock.now();
  let retryRenewal: UnixSeconds | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const tick = async (): Promise<void> => {
    const now = clock.now();
    // Without a held grant (never authorized, or forgotten after a refusal) ask now, then again
    // after the refusal's wait: a renewed license brings the product back.
    const renewAt = client.renewAt();
    const due =
      retryRenewal !== undefined ? now >= retryRenewal : renewAt === undefined || now >= renewAt;
    if (due) {
      try {
        const auth = await client.authorize();
        retryRenewal = auth.cached ? now + RETRY_UNANSWERED_SECONDS : undefined;
      } catch (e) {
        onError(e);
        const refused = (e as TallyError).serverCode !== undefined;
        retryRenewal = now + (refused ? RETRY_REFUSED_SECONDS : RETRY_UNANSWERED_SECONDS);
      }
    }
    if (now >= nextFlush) {
      try {
        await client.flush();
      } catch (e) {
        onError(e);
      }
      nextFlush = now + every;
    }
  };

  const timer = setInterval(() => {
    // One tick at a time: a slow server never stacks them up.
    running = running.then(() => (stopped ? undefined : tick()));
  }, options.pollMs ?? 1000);
  running = running.then(tick);

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      try {
        await client.flush();
      } catch (e) {
        onError(e);
      }
    },
  };
}
