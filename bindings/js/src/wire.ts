/**
 * The client protocol, version 2, as the server speaks it (`tally-proto/src/wire.rs` and
 * `license.rs`). Field names are the JSON names; instants are Unix seconds (UTC).
 */

export const PROTOCOL_VERSION = 2;
export const PATH_HELLO = "/api/v2/hello";
export const PATH_AUTHORIZE = "/api/v2/authorize";
export const PATH_SESSION_REPORT = "/api/v2/session/report";

/** Length of one usage slice: usage is counted per 3-minute UTC slice. */
export const SLICE_SECONDS = 180;
export const MAX_REPORTS_PER_REQUEST = 500;
export const MAX_FEATURES_PER_REPORT = 64;
export const MAX_FEATURE_LEN = 128;
export const MAX_FRIENDLY_NAME_LEN = 255;
export const DEFAULT_GRACE_DAYS = 7;

export type UnixSeconds = number;

export type LicenseType =
  | "per-device"
  | "per-active-device"
  | "concurrent-device"
  | "concurrent-instance"
  | "per-instance"
  | "per-usage"
  | "per-domain";

export interface ServerHello {
  protocol: number;
  uuid: string;
  signing_key: string;
  encryption_key: string;
  server_time: UnixSeconds;
  certificate?: string;
}

/** What a server certificate and an activation name: one server instance and its keys. */
export interface ServerPublicIdentity {
  uuid: string;
  signing_key: string;
  encryption_key: string;
}

export interface Envelope {
  v: number;
  enc: string;
  ct: string;
}

export interface SealedResponse {
  ct: string;
}

export interface ErrorBody {
  code: number;
  name: string;
  message: string;
  server_time?: UnixSeconds;
}

/** The plaintext of a sealed response: `{"ok": …}` or `{"err": ErrorBody}`. */
export type Reply<T> = { ok: T } | { err: ErrorBody };

export interface RequestStamp {
  request_id: string;
  sent_at: UnixSeconds;
}

export interface ValidationField {
  domain?: string;
  app_id?: string;
  process?: string;
}

export interface AuthorizeRequest {
  stamp: RequestStamp;
  organization: string;
  handshake_code: string;
  session_password?: string;
  device_uuid: string;
  product: string;
  version?: number;
  modules: string[];
  validation: ValidationField;
  friendly_name?: string;
  buffer_days?: number;
  instances?: number;
}

export interface GrantedItem {
  license_id: string;
  item_id: string;
  product: string;
  modules: string[];
  license_type: LicenseType;
  end: UnixSeconds;
  grace_end: UnixSeconds;
}

export interface Grant {
  grant_id: string;
  server_uuid: string;
  device_uuid: string;
  organization: string;
  handshake_code: string;
  items: GrantedItem[];
  issued_at: UnixSeconds;
  valid_until: UnixSeconds;
  renew_at: UnixSeconds;
  seat_until?: UnixSeconds;
}

export interface SignedGrant {
  payload: string;
  signature: string;
}

export interface SessionGrant {
  ticket: string;
  expires_at: UnixSeconds;
}

export interface AuthorizeResponse {
  grant: SignedGrant;
  certificates: string[];
  server_time: UnixSeconds;
  session?: SessionGrant;
}

export interface SessionEnvelope {
  v: number;
  ticket: string;
  seq: number;
  ct: string;
}

export interface UsageReport {
  report_id: string;
  slice: number;
  counts: Record<string, number>;
}

export interface ReportRequest {
  sent_at: UnixSeconds;
  reports: UsageReport[];
}

export interface RefusedReport {
  report_id: string;
  code: number;
  message: string;
}

export interface ReportResponse {
  accepted: string[];
  duplicates: string[];
  refused?: RefusedReport[];
  exhausted?: string[];
  server_time: UnixSeconds;
}

/** A license item as the vendor signed it. */
export interface LicenseItem {
  id: string;
  product: string;
  versions?: { min_major: number; max_major: number };
  modules?: string[];
  license_type: LicenseType;
  quantity: number;
  start: UnixSeconds;
  end: UnixSeconds;
  grace_percent: number;
  grace_days?: number;
  max_offline_days?: number;
}

export interface License {
  format: string;
  license_id: string;
  organization: { id: string; name: string };
  alias: string;
  issued_at: UnixSeconds;
  items: LicenseItem[];
}

export interface ActivatedLicense {
  format: string;
  license: License;
  servers: ServerPublicIdentity[];
  activated_at: UnixSeconds;
  certificates: string[];
}

export interface ServerCertificate {
  format: string;
  license_id: string;
  server: ServerPublicIdentity;
  activated_at: UnixSeconds;
}

export const LICENSE_FORMAT = "tally-license/1";
export const ACTIVATED_FORMAT = "tally-activated-license/3";
export const CERTIFICATE_FORMAT = "tally-server-certificate/1";
export const MAX_ACTIVATED_SERVERS = 16;

/** The end of an item's grace after its end: it authorizes nobody from then on. */
export function graceEnd(item: LicenseItem): UnixSeconds {
  return item.end + (item.grace_days ?? DEFAULT_GRACE_DAYS) * 86_400;
}

/** Index of the slice containing `t` (slice 0 starts at the Unix epoch). */
export function sliceOf(t: UnixSeconds): number {
  return Math.floor(t / SLICE_SECONDS);
}

/** First second after slice `index`. */
export function sliceEnd(index: number): UnixSeconds {
  return (index + 1) * SLICE_SECONDS;
}
