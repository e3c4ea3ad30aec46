/**
 * The stable error codes of Tally (`docs/error-codes.md`): every refusal or failure the SDK
 * reports carries one, whatever language the product is written in.
 */

import type { ErrorBody } from "./wire.js";

/** Code numbers by name; the names on the wire are in {@link codeName}. */
export const ErrorCode = {
  ServerNotReady: 100,
  IdentityMismatch: 101,
  UnknownHandshakeCode: 110,
  UnknownOrganization: 111,
  HandshakeOrganizationMismatch: 112,
  HandshakeDisabled: 113,
  WrongSessionPassword: 114,
  TrialUnavailable: 115,
  ValidationFieldMismatch: 116,
  TooManyAttempts: 117,
  OriginNotAllowed: 118,
  NoMatchingLicense: 120,
  LicenseExpired: 121,
  LicenseNotYetValid: 122,
  DeviceQuotaExceeded: 130,
  UsageQuotaExceeded: 131,
  SeatsExhausted: 132,
  DomainQuotaExceeded: 133,
  NoLivePlace: 134,
  BadRequest: 200,
  BadEnvelope: 201,
  ReplayedRequest: 202,
  StaleRequest: 203,
  PayloadTooLarge: 204,
  SessionExpired: 205,
  ProtocolOutdated: 206,
  Unauthorized: 300,
  InvalidLicenseFile: 301,
  LicenseForAnotherServer: 302,
  LicenseNotActivated: 303,
  NotFound: 304,
  Conflict: 305,
  InvalidInput: 306,
  EmailFailed: 307,
  Internal: 500,
  ServerUnreachable: 1000,
  CachedGrantUsed: 1001,
  GrantInvalid: 1002,
  GrantExpired: 1003,
  LocalStorageFailed: 1004,
  ClockRollback: 1005,
  NoGrant: 1006,
  ServerNotTrusted: 1007,
  SeatLapsed: 1008,
  LicenseInGrace: 1009,
} as const;

/** `ServerNotReady` → `server_not_ready`. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c, at: number) => (at === 0 ? "" : "_") + c.toLowerCase());
}

const NAMES = new Map<number, string>(
  Object.entries(ErrorCode).map(([name, code]) => [code, snake(name)]),
);

/** The stable name of a code this SDK knows (`origin_not_allowed`), else `undefined`. */
export function codeName(code: number): string | undefined {
  return NAMES.get(code);
}

/** Every code this SDK knows, with its name, in table order. */
export function knownCodes(): Array<[number, string]> {
  return [...NAMES.entries()];
}

/**
 * The known code standing for an unknown server code, by the table's numbering families: 1xx
 * refusals of a device, 2xx protocol errors, 3xx administration, anything else a fault.
 */
export function fallbackCode(code: number): number {
  if (code >= 100 && code <= 199) return ErrorCode.NoMatchingLicense;
  if (code >= 200 && code <= 299) return ErrorCode.BadRequest;
  if (code >= 300 && code <= 399) return ErrorCode.InvalidInput;
  return ErrorCode.Internal;
}

/** Refusals that, sealed by the server, take this device's right to its held grant. */
const ENDS_GRANT = new Set<number>([
  ErrorCode.UnknownHandshakeCode,
  ErrorCode.UnknownOrganization,
  ErrorCode.HandshakeOrganizationMismatch,
  ErrorCode.HandshakeDisabled,
  ErrorCode.WrongSessionPassword,
  ErrorCode.TrialUnavailable,
  ErrorCode.ValidationFieldMismatch,
  ErrorCode.OriginNotAllowed,
  ErrorCode.NoMatchingLicense,
  ErrorCode.LicenseExpired,
  ErrorCode.LicenseNotYetValid,
  ErrorCode.DeviceQuotaExceeded,
  ErrorCode.UsageQuotaExceeded,
  ErrorCode.SeatsExhausted,
  ErrorCode.DomainQuotaExceeded,
]);

/** An SDK failure: a stable code, its name and a message for people. */
export class TallyError extends Error {
  /** The stable code (`118`). */
  readonly code: number;
  /** Its stable name (`origin_not_allowed`). */
  readonly codeName: string;
  /**
   * The number the server answered with, for server refusals. It differs from `code` only when
   * the server speaks a code this SDK version does not know yet.
   */
  readonly serverCode: number | undefined;
  /** The message without the code in front. */
  readonly detail: string;

  constructor(code: number, message: string, serverCode?: number) {
    const name = codeName(code) ?? "unknown";
    super(`${code} ${name}: ${message}`);
    this.name = "TallyError";
    this.code = code;
    this.codeName = name;
    this.serverCode = serverCode;
    this.detail = message;
  }

  /** A refusal from the server; an unknown code is mapped by its family, its number kept. */
  static fromServer(body: ErrorBody): TallyError {
    if (codeName(body.code) !== undefined) {
      return new TallyError(body.code, body.message, body.code);
    }
    return new TallyError(
      fallbackCode(body.code),
      `server error ${body.code} ${body.name}: ${body.message}`,
      body.code,
    );
  }

  /**
   * Whether this refusal, sealed by the server, denies this device the license (its quota, its
   * code, its dates, this page's origin), not merely this request: the held grant is forgotten.
   */
  endsGrant(): boolean {
    return ENDS_GRANT.has(this.code) && this.serverCode === this.code;
  }
}
