/**
 * The Tally client for one product in one browser (`tally-sdk`'s `Client`, the same rules):
 *
 * * {@link TallyClient.authorize} asks the servers in order and verifies the chain vendor key →
 *   server certificate (the hello) → activated license → server keys → signed grant → granted
 *   items. A server refusal is thrown with its stable code; a sealed refusal that denies this
 *   device the license makes the client forget its grant. Only when no server gives an answer is
 *   the held grant used: verified again, before its `valid_until`, with the clock not turned
 *   back; the result then says `cached` with the warning `1001 cached_grant_used`.
 * * {@link TallyClient.check} judges the held grant locally; {@link TallyClient.start} renews it
 *   at its `renew_at` and sends usage reports every 3 minutes.
 * * {@link TallyClient.recordUsage} counts per 3-minute UTC slice in storage; a closed slice
 *   becomes a report whose id never changes, so the server counts it once however often
 *   {@link TallyClient.flush} retries it. Reports travel in the report session the last
 *   authorization opened.
 */

import { type Background, type BackgroundOptions, startBackground } from "./background.js";
import { fromBase64, toBase64 } from "./bytes.js";
import { trustedHello, verifyGrant } from "./chain.js";
import { type Clock, systemClock } from "./clock.js";
import { ErrorCode, TallyError } from "./errors.js";
import { isUuid, randomId, uuidV4 } from "./ids.js";
import { checkClock, observe, reset } from "./rollback.js";
import { verifyingKey } from "./signature.js";
import { defaultStorage, type KeyValueStore, StateStore, withLock } from "./storage.js";
import { type Fetch, isCallError, Transport } from "./transport.js";
import * as usage from "./usage.js";
import {
  type AuthorizeRequest,
  type AuthorizeResponse,
  type Grant,
  MAX_FRIENDLY_NAME_LEN,
  MAX_REPORTS_PER_REQUEST,
  PATH_AUTHORIZE,
  type ReportResponse,
  type RequestStamp,
  type ServerPublicIdentity,
  type SessionGrant,
  type SignedGrant,
  type UnixSeconds,
  type UsageReport,
} from "./wire.js";

/** What the product tells the SDK; checked once, when the client is made. */
export interface TallyConfig {
  /** Server base URLs (`https://license.example:48080`): main first, then standbys. */
  servers: string[];
  /** The vendor's Ed25519 public key (base64); only servers and licenses it signed are trusted. */
  vendorPublicKey: string;
  /** Product name, as the license items name it. */
  product: string;
  /** Organization id; with no handshake code its default code is used. */
  organization?: string;
  handshakeCode?: string;
  sessionPassword?: string;
  /** Major version of the product. */
  version?: number;
  /** Modules the product needs. */
  modules?: string[];
  /**
   * The domain the server checks against the code's validation domains and counts for
   * per-domain licenses. In a browser it is the page's host (`location.hostname`) unless given;
   * the server refuses a page that names another domain where one would be counted.
   */
  domain?: string;
  appId?: string;
  /** A name for administrators (at most 255 characters). */
  friendlyName?: string;
  /** Fewer offline days than the license allows (at least 1). */
  bufferDays?: number;
  /** Running instances, for instance-counted licenses. */
  instances?: number;
  /** Time allowed for each call to a server, in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Where the state is kept: `localStorage` unless given. */
  storage?: KeyValueStore;
  /** The clock (tests move a `ManualClock` by hand). */
  clock?: Clock;
  /** The `fetch` to use (the platform's unless given). */
  fetch?: Fetch;
}

/** The result of {@link TallyClient.authorize} and {@link TallyClient.check}. */
export interface Authorization {
  grant: Grant;
  /** True when the grant held on the device was used rather than a fresh answer of a server. */
  cached: boolean;
  /** Codes of successes with a warning: `1001 cached_grant_used`, `1009 license_in_grace`. */
  warnings: number[];
  /** When the license's grace ends, while it is in grace. */
  graceUntil?: UnixSeconds;
}

/** The result of {@link TallyClient.flush}. */
export interface FlushOutcome {
  /** Reports sent and answered in this call. */
  sent: number;
  /** Reports the server holds now, counted now or before; they are removed locally. */
  acknowledged: number;
  /** Of those, reports the server had counted before (a retry after a lost answer). */
  duplicates: number;
  /** Reports still waiting for a server. */
  pending: number;
  /** Reports dropped unsent because their slice ended more than 30 days ago. */
  expired: number;
  /** Reports the server refused for good (malformed); they were dropped. */
  refused: number;
  /** The per-usage item of this device's grant is used up: the grant was forgotten. */
  usageExhausted: boolean;
}

/** What {@link TallyClient.status} reports, from local state only. */
export interface Status {
  deviceUuid: string;
  /** The held grant, when there is one and it verifies (it may have expired). */
  grant?: Grant;
  /** Reports waiting for a server, counting the current slice's counters as one. */
  pendingReports: number;
  openSlice?: number;
  openSliceCounts: Record<string, number>;
}

/** The last verified grant with what is needed to verify it again offline (`grant` entry). */
interface CachedGrant {
  grant: SignedGrant;
  certificates: string[];
  server: ServerPublicIdentity;
}

/** Why the server last refused this device for good (`refusal` entry). */
interface Refusal {
  code: number;
  message: string;
  at: UnixSeconds;
}

/** A report session as kept (`session` entry). */
interface StoredSession {
  base: string;
  ticket: string;
  /** The session key (base64). It only lets this device report as itself. */
  key: string;
  /** Server time. */
  expires_at: UnixSeconds;
  /** Server time minus local time. */
  offset: number;
  /** Number of the last message sent. */
  seq: number;
}

/** Why one server gave no result. */
class Failure {
  private constructor(
    /**
     * `unreachable`: no answer (next server, then the held grant); `untrusted`: it answered but
     * could not prove the vendor activated a license for it (treated as absent); `refused`: a
     * refusal, or an answer that failed verification; `denied`: a refusal sealed by the server
     * the request was sealed to, which may end the held grant.
     */
    readonly kind: "unreachable" | "untrusted" | "refused" | "denied",
    readonly message: string,
    readonly error?: TallyError,
  ) {}

  static untrusted(message: string): Failure {
    return new Failure("untrusted", message);
  }

  static of(e: unknown): Failure {
    if (e instanceof Failure) return e;
    if (e instanceof TallyError) return new Failure("refused", e.message, e);
    if (isCallError(e)) {
      if (e.kind === "unreachable") return new Failure("unreachable", e.message);
      const error = TallyError.fromServer(e.body);
      return new Failure(e.kind, error.message, error);
    }
    const error = new TallyError(ErrorCode.Internal, String(e));
    return new Failure("refused", error.message, error);
  }

  /** The refusal to report (`refused` and `denied` failures). */
  get refusal(): TallyError {
    return this.error ?? new TallyError(ErrorCode.Internal, this.message);
  }
}

type Online =
  | { ok: true; auth: Authorization }
  | { ok: false; refused: TallyError }
  | { ok: false; refused?: undefined; problems: string; untrusted: boolean };

type SessionSend =
  | { kind: "answered"; reply: ReportResponse }
  | { kind: "no-session" }
  | { kind: "unreachable"; message: string }
  | { kind: "refused"; error: TallyError };

/** Seconds before the server's expiry at which a session is no longer used. */
const SESSION_EXPIRY_MARGIN = 60;

function invalidInput(message: string): TallyError {
  return new TallyError(ErrorCode.InvalidInput, message);
}

function noServerCode(untrusted: boolean): number {
  return untrusted ? ErrorCode.ServerNotTrusted : ErrorCode.ServerUnreachable;
}

/** An authorization of `grant` at `now`, with the grace warning when its items have ended. */
function authorization(grant: Grant, cached: boolean, now: UnixSeconds): Authorization {
  const ended = grant.items.every((i) => now >= i.end);
  const auth: Authorization = { grant, cached, warnings: [] };
  if (ended && grant.items.length > 0) {
    auth.graceUntil = Math.max(...grant.items.map((i) => i.grace_end));
    auth.warnings.push(ErrorCode.LicenseInGrace);
  }
  return auth;
}

/**
 * What a verified grant held on the device allows at `now`, without a server: the grant until
 * its `valid_until`, then `1008 seat_lapsed` for a concurrent seat or `1003 grant_expired`.
 */
export function localVerdict(grant: Grant, now: UnixSeconds): Authorization {
  if (now >= grant.valid_until) {
    const [code, what] =
      grant.seat_until !== undefined
        ? [ErrorCode.SeatLapsed, "the concurrent seat ended"]
        : [ErrorCode.GrantExpired, "the grant's offline time ended"];
    throw new TallyError(code, `${what} at ${grant.valid_until} and no server renewed it`);
  }
  return authorization(grant, true, now);
}

function checkConfig(c: TallyConfig): Uint8Array {
  if (!Array.isArray(c.servers) || c.servers.length === 0) {
    throw invalidInput("servers: name at least one server URL");
  }
  for (const s of c.servers) {
    if (!/^https?:\/\/[^/\s]+/.test(s)) {
      throw invalidInput(`servers: \`${s}\` must be a URL like https://host:port`);
    }
  }
  if (typeof c.product !== "string" || c.product.trim() === "") {
    throw invalidInput("product: required");
  }
  if (c.friendlyName !== undefined) {
    if ([...c.friendlyName].length > MAX_FRIENDLY_NAME_LEN) {
      throw invalidInput(`friendlyName: at most ${MAX_FRIENDLY_NAME_LEN} characters`);
    }
    if (/\p{Cc}/u.test(c.friendlyName)) {
      throw invalidInput("friendlyName: control characters are not allowed");
    }
  }
  if (c.bufferDays !== undefined && !(Number.isInteger(c.bufferDays) && c.bufferDays >= 1)) {
    throw invalidInput("bufferDays: a whole number, at least 1");
  }
  if (
    c.instances !== undefined &&
    !(Number.isInteger(c.instances) && c.instances >= 1 && c.instances <= 10_000)
  ) {
    throw invalidInput("instances: between 1 and 10000");
  }
  if (c.timeoutMs !== undefined && !(c.timeoutMs > 0)) {
    throw invalidInput("timeoutMs: must be more than zero");
  }
  try {
    return verifyingKey(c.vendorPublicKey);
  } catch (e) {
    throw invalidInput(`vendorPublicKey: ${(e as Error).message}`);
  }
}

/** The page's host, when running in a browser. */
function pageHost(): string | undefined {
  const location = (globalThis as { location?: { hostname?: string } }).location;
  return location?.hostname || undefined;
}

export class TallyClient {
  readonly deviceUuid: string;
  private readonly config: TallyConfig;
  private readonly vendor: Uint8Array;
  private readonly clock: Clock;
  private readonly transport: Transport;
  private readonly state: StateStore;
  private readonly lockName: string;
  /** The held grant as last verified, so frequent checks do not verify signatures again. */
  private verified: { text: string; grant: Grant } | undefined;
  /** One flush at a time. */
  private flushing: Promise<unknown> = Promise.resolve();

  /** Checks `config` and reads or creates the device id; no server is contacted. */
  constructor(config: TallyConfig) {
    this.vendor = checkConfig(config);
    this.config = { ...config, domain: config.domain ?? pageHost() };
    this.clock = config.clock ?? systemClock;
    const fetchImpl = config.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport(fetchImpl, config.timeoutMs ?? 10_000);
    const storage = config.storage ?? defaultStorage();
    if (storage === undefined) {
      throw new TallyError(
        ErrorCode.LocalStorageFailed,
        "no localStorage here: pass `storage` (e.g. a MemoryStorage)",
      );
    }
    this.state = StateStore.for(storage, config.vendorPublicKey, config.product);
    this.lockName = `tally:${this.state.prefix}`;
    const stored = this.state.read<string>("device-id");
    if (stored === undefined) {
      this.deviceUuid = uuidV4();
      this.state.write("device-id", this.deviceUuid);
    } else if (typeof stored === "string" && isUuid(stored)) {
      this.deviceUuid = stored;
    } else {
      throw new TallyError(
        ErrorCode.LocalStorageFailed,
        "the stored device id is damaged (it must hold a UUID)",
      );
    }
  }

  private locked<T>(task: () => T | Promise<T>): Promise<T> {
    return withLock(this.lockName, async () => task());
  }

  /**
   * Asks the servers in order for a grant and keeps it. Only when no server gives an answer is
   * the held grant used (`cached`, warning `1001`). A refusal by a server is thrown as is, never
   * replaced by the held grant; one that denies this device the license forgets the grant.
   */
  async authorize(): Promise<Authorization> {
    const online = await this.authorizeOnline();
    if (online.ok) return online.auth;
    if (online.refused !== undefined) throw online.refused;
    return this.offline(online.problems, online.untrusted);
  }

  /**
   * Whether the product may run now, from the held grant alone: verified, within its local
   * validity, the clock not turned back, not refused since. Never contacts a server.
   */
  async check(): Promise<Authorization> {
    return this.locked(() => {
      const now = this.clock.now();
      const highWater = observe(this.state, now);
      const grant = this.heldGrant();
      if (grant === undefined) throw this.noGrant("authorize once first");
      checkClock(now, highWater);
      return localVerdict(grant, now);
    });
  }

  /** The servers in order, without falling back to the held grant. */
  private async authorizeOnline(): Promise<Online> {
    const problems: string[] = [];
    let untrusted = false;
    for (const base of this.config.servers) {
      try {
        return { ok: true, auth: await this.authorizeAt(base) };
      } catch (e) {
        const f = Failure.of(e);
        switch (f.kind) {
          case "refused":
            return { ok: false, refused: f.refusal };
          case "denied":
            if (f.refusal.endsGrant()) await this.forgetGrant(f.refusal);
            return { ok: false, refused: f.refusal };
          case "untrusted":
            untrusted = true;
            problems.push(f.message);
            break;
          case "unreachable":
            problems.push(f.message);
            break;
        }
      }
    }
    return { ok: false, problems: problems.join("; "), untrusted };
  }

  private async authorizeAt(base: string): Promise<Authorization> {
    const hello = await this.transport.hello(base);
    let offset = hello.server_time - this.clock.now();
    const trusted = trustedHello(this.vendor, hello);
    if ("problem" in trusted) throw Failure.untrusted(`${base}: ${trusted.problem}`);
    const { identity, encryptionKey } = trusted;
    let retried = false;
    for (;;) {
      const stamp: RequestStamp = { request_id: randomId(), sent_at: this.clock.now() + offset };
      try {
        const { response, sessionKey } = await this.transport.sealed<AuthorizeResponse>(
          base,
          PATH_AUTHORIZE,
          "authorize",
          encryptionKey,
          this.request(stamp),
        );
        const auth = await this.acceptAuthorization(identity, response);
        if (response.session !== undefined) {
          await this.openReportSession(base, response.session, sessionKey, offset);
        }
        return auth;
      } catch (e) {
        // A stale stamp: correct the offset from the server's clock and send once more.
        if (
          !retried &&
          isCallError(e) &&
          e.kind !== "unreachable" &&
          e.body.code === ErrorCode.StaleRequest &&
          e.body.server_time !== undefined
        ) {
          offset = e.body.server_time - this.clock.now();
          retried = true;
          continue;
        }
        throw e;
      }
    }
  }

  private request(stamp: RequestStamp): AuthorizeRequest {
    const c = this.config;
    const validation: AuthorizeRequest["validation"] = {};
    if (c.domain !== undefined) validation.domain = c.domain;
    if (c.appId !== undefined) validation.app_id = c.appId;
    const req: AuthorizeRequest = {
      stamp,
      organization: c.organization ?? "",
      handshake_code: c.handshakeCode ?? "",
      device_uuid: this.deviceUuid,
      product: c.product,
      modules: c.modules ?? [],
      validation,
    };
    if (c.sessionPassword !== undefined) req.session_password = c.sessionPassword;
    if (c.version !== undefined) req.version = c.version;
    if (c.friendlyName !== undefined) req.friendly_name = c.friendlyName;
    if (c.bufferDays !== undefined) req.buffer_days = c.bufferDays;
    if (c.instances !== undefined) req.instances = c.instances;
    return req;
  }

  /** Verifies an authorization answer of `server` and keeps it. */
  private async acceptAuthorization(
    server: ServerPublicIdentity,
    response: AuthorizeResponse,
  ): Promise<Authorization> {
    const grant = verifyGrant(
      this.vendor,
      server,
      response.certificates,
      response.grant,
      this.deviceUuid,
    );
    const cache: CachedGrant = {
      grant: response.grant,
      certificates: response.certificates,
      server,
    };
    return this.locked(() => {
      const now = this.clock.now();
      this.state.write("grant", cache);
      this.state.remove("refusal");
      reset(this.state, now);
      return authorization(grant, false, now);
    });
  }

  /** The offline path; `problems` says why no server answered. */
  private async offline(problems: string, untrusted: boolean): Promise<Authorization> {
    let auth: Authorization;
    try {
      auth = await this.check();
    } catch (e) {
      if (!(e instanceof TallyError)) throw e;
      if (e.code === ErrorCode.NoGrant) {
        throw new TallyError(noServerCode(untrusted), `${problems}; and no grant is held`);
      }
      if (e.code === ErrorCode.SeatLapsed || e.code === ErrorCode.GrantExpired) {
        throw new TallyError(e.code, `${e.detail} (${problems})`);
      }
      throw e;
    }
    auth.warnings.unshift(ErrorCode.CachedGrantUsed);
    return auth;
  }

  /** Forgets the held grant because the server refused this device the license for good. */
  private async forgetGrant(refusal: TallyError): Promise<void> {
    await this.locked(() => {
      this.state.remove("grant");
      const kept: Refusal = { code: refusal.code, message: refusal.detail, at: this.clock.now() };
      this.state.write("refusal", kept);
    });
  }

  /** The error for "no grant is held": the server's last refusal if there was one. */
  private noGrant(hint: string): TallyError {
    const r = this.state.read<Refusal>("refusal");
    if (r !== undefined) {
      return new TallyError(
        r.code,
        `the server refused this device at ${r.at}: ${r.message}; authorize again once that has changed`,
      );
    }
    return new TallyError(ErrorCode.NoGrant, `no grant is held: ${hint}`);
  }

  /**
   * The held grant verified again (`undefined` when none is held; a grant that fails
   * verification throws `1002 grant_invalid`). Storage is read each time, as another tab may have
   * replaced it; signatures are verified again only when it changed.
   */
  private heldGrant(): Grant | undefined {
    const cache = this.state.read<CachedGrant>("grant");
    if (cache === undefined) return undefined;
    const text = JSON.stringify(cache);
    if (this.verified?.text === text) return this.verified.grant;
    this.verified = undefined;
    const grant = verifyGrant(
      this.vendor,
      cache.server,
      cache.certificates,
      cache.grant,
      this.deviceUuid,
    );
    this.verified = { text, grant };
    return grant;
  }

  /**
   * Adds `count` uses of `feature` (e.g. `scan`) to the current 3-minute slice, in storage when
   * the promise resolves. Feature names are 1–128 printable ASCII characters without spaces.
   */
  async recordUsage(feature: string, count = 1): Promise<void> {
    usage.checkFeature(feature);
    if (!Number.isSafeInteger(count) || count < 0) {
      throw invalidInput(`count: a whole number, not ${count}`);
    }
    await this.locked(() => {
      const now = this.clock.now();
      observe(this.state, now);
      if (count === 0) return;
      const book = this.state.read<usage.UsageBook>("usage") ?? usage.emptyBook();
      usage.record(book, now, feature, count);
      this.state.write("usage", book);
    });
  }

  /**
   * Closes the current slice into a report, drops reports older than 30 days and sends the rest
   * in the report session of the last authorization; without a usable one it authorizes first,
   * once. Acknowledged reports are removed, as are those refused for good; the others stay, with
   * their ids, for the next call. Throws `1000 server_unreachable` (or `1007`) when no report
   * could be delivered, and a server's refusal as is; the reports are kept either way.
   */
  flush(): Promise<FlushOutcome> {
    const run = this.flushing.then(
      () => this.flushNow(),
      () => this.flushNow(),
    );
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushNow(): Promise<FlushOutcome> {
    const { remaining, expired } = await this.locked(() => {
      const now = this.clock.now();
      observe(this.state, now);
      const book = this.state.read<usage.UsageBook>("usage") ?? usage.emptyBook();
      usage.closeOpen(book);
      const expired = usage.expire(book, now);
      this.state.write("usage", book);
      return { remaining: book.pending, expired };
    });
    const outcome: FlushOutcome = {
      sent: 0,
      acknowledged: 0,
      duplicates: 0,
      pending: remaining.length,
      expired,
      refused: 0,
      usageExhausted: false,
    };
    let authorized = false;
    while (remaining.length > 0) {
      const chunk = remaining.slice(0, MAX_REPORTS_PER_REQUEST);
      const sent = await this.reportInSession(chunk);
      let problem: TallyError;
      switch (sent.kind) {
        case "answered":
          await this.acknowledge(chunk, sent.reply, outcome);
          remaining.splice(0, chunk.length);
          continue;
        case "no-session":
          problem = new TallyError(
            ErrorCode.SessionExpired,
            "the server opened no report session for this device",
          );
          break;
        case "unreachable":
          problem = new TallyError(
            ErrorCode.ServerUnreachable,
            `${sent.message}; ${remaining.length} usage reports kept for later`,
          );
          break;
        case "refused":
          if (sent.error.code !== ErrorCode.NoLivePlace) throw sent.error;
          problem = sent.error;
          break;
      }
      if (authorized) throw problem;
      authorized = true;
      const online = await this.authorizeOnline();
      if (!online.ok) {
        if (online.refused !== undefined) throw online.refused;
        throw new TallyError(
          noServerCode(online.untrusted),
          `${online.problems}; ${remaining.length} usage reports kept for later`,
        );
      }
    }
    outcome.pending = (
      this.state.read<usage.UsageBook>("usage") ?? usage.emptyBook()
    ).pending.length;
    return outcome;
  }

  /** Removes the reports of `chunk` the server acknowledged or refused for good; forgets the grant when its per-usage item is used up. */
  private async acknowledge(
    chunk: UsageReport[],
    reply: ReportResponse,
    outcome: FlushOutcome,
  ): Promise<void> {
    const sent = new Set(chunk.map((r) => r.report_id));
    const accepted = new Set(reply.accepted.filter((id) => sent.has(id)));
    const duplicates = new Set(reply.duplicates.filter((id) => sent.has(id) && !accepted.has(id)));
    const refused = new Set(
      (reply.refused ?? []).map((r) => r.report_id).filter((id) => sent.has(id)),
    );
    for (const r of reply.refused ?? []) {
      if (sent.has(r.report_id)) {
        console.warn(
          `tally: usage report ${r.report_id} refused by the server for good (${r.code}: ${r.message}); dropped`,
        );
      }
    }
    outcome.sent += chunk.length;
    outcome.acknowledged += accepted.size + duplicates.size;
    outcome.duplicates += duplicates.size;
    outcome.refused += refused.size;
    await this.locked(() => {
      const book = this.state.read<usage.UsageBook>("usage") ?? usage.emptyBook();
      usage.acknowledge(book, new Set([...accepted, ...duplicates, ...refused]));
      this.state.write("usage", book);
    });
    const exhausted = reply.exhausted ?? [];
    if (exhausted.length > 0) {
      let held: Grant | undefined;
      try {
        held = this.heldGrant();
      } catch {
        held = undefined;
      }
      if (held?.items.some((i) => exhausted.includes(i.item_id))) {
        outcome.usageExhausted = true;
        await this.forgetGrant(
          new TallyError(
            ErrorCode.UsageQuotaExceeded,
            `the usage quota of item ${exhausted.join(", ")} is used up`,
            ErrorCode.UsageQuotaExceeded,
          ),
        );
      }
    }
  }

  /** Keeps the report session an authorization at `base` opened. */
  private async openReportSession(
    base: string,
    granted: SessionGrant,
    key: Uint8Array,
    offset: number,
  ): Promise<void> {
    const session: StoredSession = {
      base,
      ticket: granted.ticket,
      key: toBase64(key),
      expires_at: granted.expires_at,
      offset,
      seq: 0,
    };
    await this.locked(() => this.state.write("session", session));
  }

  /** Takes the next message number of a usable session, stored before it is used. */
  private async nextMessage(): Promise<StoredSession | undefined> {
    return this.locked(() => {
      const session = this.state.read<StoredSession>("session");
      if (session === undefined) return undefined;
      // A session opened with a server this configuration no longer names is not used.
      if (!this.config.servers.includes(session.base)) return undefined;
      const sentAt = this.clock.now() + session.offset;
      let usable = sentAt < session.expires_at - SESSION_EXPIRY_MARGIN;
      try {
        usable &&= fromBase64(session.key).length === 32;
      } catch {
        usable = false;
      }
      if (!usable) {
        this.state.remove("session");
        return undefined;
      }
      session.seq += 1;
      this.state.write("session", session);
      return session;
    });
  }

  /** Sends `reports` in the report session. */
  private async reportInSession(reports: UsageReport[]): Promise<SessionSend> {
    const session = await this.nextMessage();
    if (session === undefined) return { kind: "no-session" };
    const request = { sent_at: this.clock.now() + session.offset, reports };
    const retire = async (): Promise<void> => {
      await this.locked(() => this.state.remove("session"));
    };
    try {
      const reply = await this.transport.inSession<ReportResponse>(
        session.base,
        session.ticket,
        session.seq,
        fromBase64(session.key),
        request,
      );
      return { kind: "answered", reply };
    } catch (e) {
      if (!isCallError(e)) throw e;
      if (e.kind === "unreachable") {
        await retire();
        return { kind: "unreachable", message: e.message };
      }
      const retired: number[] = [
        ErrorCode.SessionExpired,
        ErrorCode.StaleRequest,
        ErrorCode.ReplayedRequest,
        ErrorCode.BadEnvelope,
      ];
      if (retired.includes(e.body.code)) {
        await retire();
        return { kind: "no-session" };
      }
      if (e.kind === "denied") return { kind: "refused", error: TallyError.fromServer(e.body) };
      throw TallyError.fromServer(e.body);
    }
  }

  /** The device id, the held grant and unsent usage, from local state only. */
  async status(): Promise<Status> {
    return this.locked(() => {
      const book = this.state.read<usage.UsageBook>("usage") ?? usage.emptyBook();
      let grant: Grant | undefined;
      try {
        grant = this.heldGrant();
      } catch (e) {
        console.warn(`tally: the held grant does not verify: ${(e as Error).message}`);
      }
      const status: Status = {
        deviceUuid: this.deviceUuid,
        pendingReports: usage.waiting(book),
        openSliceCounts: book.open?.counts ?? {},
      };
      if (grant !== undefined) status.grant = grant;
      if (book.open !== undefined) status.openSlice = book.open.slice;
      return status;
    });
  }

  /**
   * Starts renewing the grant before it lapses and sending usage now and every 3 minutes (see
   * `background.ts`), until `stop()`, which sends what is left.
   */
  start(options?: BackgroundOptions): Background {
    return startBackground(this, this.clock, options);
  }

  /** When the held grant should be renewed, read without verifying it (a wrong value only moves a renewal). */
  renewAt(): UnixSeconds | undefined {
    try {
      const cache = this.state.read<CachedGrant>("grant");
      if (cache === undefined) return undefined;
      const grant = JSON.parse(new TextDecoder().decode(fromBase64(cache.grant.payload))) as Grant;
      return typeof grant.renew_at === "number" ? grant.renew_at : undefined;
    } catch {
      return undefined;
    }
  }
}
