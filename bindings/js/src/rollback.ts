/**
 * Clock rollback detection (`tally-sdk/src/rollback.rs`). A held grant is only as good as the
 * clock that checks its expiry, so the highest reading ever seen is kept; a clock found clearly
 * behind it (someone turned it back to stretch the grant) refuses offline use.
 */

import { ErrorCode, TallyError } from "./errors.js";
import type { StateStore } from "./storage.js";
import type { UnixSeconds } from "./wire.js";

/** Clock corrections smaller than this (NTP steps, slightly different sources) are no rollback. */
export const ROLLBACK_TOLERANCE_SECONDS = 300;

/** The mark is written only when the clock moved this far past it, to spare frequent writes. */
const MARK_STEP_SECONDS = 60;

interface ClockMark {
  high_water: UnixSeconds;
}

/** Records `now` and returns the highest reading seen before it. */
export function observe(state: StateStore, now: UnixSeconds): UnixSeconds {
  const mark = state.read<ClockMark>("clock")?.high_water ?? 0;
  if (now >= mark + MARK_STEP_SECONDS || mark === 0) {
    state.write("clock", { high_water: now });
  }
  return mark;
}

/** A server just vouched for the present: start over from `now`, even if it is earlier. */
export function reset(state: StateStore, now: UnixSeconds): void {
  state.write("clock", { high_water: now });
}

/** Refuses `now` when it lies more than the tolerance before `highWater`. */
export function checkClock(now: UnixSeconds, highWater: UnixSeconds): void {
  if (now < highWater - ROLLBACK_TOLERANCE_SECONDS) {
    throw new TallyError(
      ErrorCode.ClockRollback,
      `the device clock reads ${now}, ${highWater - now} s before a time already seen (${highWater}); correct the clock or connect to the server`,
    );
  }
}
