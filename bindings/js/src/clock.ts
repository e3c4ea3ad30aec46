/** The clock every time-dependent rule reads, injectable so tests can move it by hand. */

import type { UnixSeconds } from "./wire.js";

export interface Clock {
  /** Seconds since the Unix epoch. */
  now(): UnixSeconds;
}

export const systemClock: Clock = {
  now: () => Math.floor(Date.now() / 1000),
};

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(private t: UnixSeconds) {}
  now(): UnixSeconds {
    return this.t;
  }
  set(t: UnixSeconds): void {
    this.t = t;
  }
  advance(seconds: number): void {
    this.t += seconds;
  }
}
