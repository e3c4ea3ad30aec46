/**
 * The Tally browser SDK: authorize a web product against a Tally license server, verify the
 * grant's chain up to the vendor key, keep working offline within the grant's validity, and
 * report usage counted per 3-minute slice. See `docs/sdk/browser.md`.
 */

export {
  type Background,
  type BackgroundOptions,
  DEFAULT_REPORT_INTERVAL_SECONDS,
} from "./background.js";
export {
  type Authorization,
  type FlushOutcome,
  type Status,
  TallyClient,
  type TallyConfig,
} from "./client.js";
export { type Clock, ManualClock, systemClock } from "./clock.js";
export { codeName, ErrorCode, TallyError } from "./errors.js";
export { ROLLBACK_TOLERANCE_SECONDS } from "./rollback.js";
export { type KeyValueStore, MemoryStorage } from "./storage.js";
export { RETENTION_SECONDS } from "./usage.js";
export type { Grant, GrantedItem, LicenseType } from "./wire.js";
