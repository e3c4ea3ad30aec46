/**
 * HTTP to one server with `fetch` (`tally-sdk/src/transport.rs`): the public hello, and sealed
 * requests whose replies only this client can open. Every HTTP status is read as an answer;
 * only a missing or unintelligible answer is a transport failure. In a browser a page whose
 * origin no handshake code names gets no readable answer (CORS): that too is "unreachable".
 */

import { fromUtf8, utf8 } from "./bytes.js";
import { ENVELOPE_VERSION, sealRequest } from "./envelope.js";
import { Direction, openMessage, sealMessage } from "./session.js";
import {
  type ErrorBody,
  PATH_HELLO,
  PATH_SESSION_REPORT,
  PROTOCOL_VERSION,
  type Reply,
  type SealedResponse,
  type ServerHello,
  type SessionEnvelope,
} from "./wire.js";

/** Why a call to one server did not produce a result. */
export type CallError =
  /** No usable answer: the next server may be tried, and the held grant used. */
  | { kind: "unreachable"; message: string }
  /** A plain error: the server could not open the request (anyone on the way can write one). */
  | { kind: "refused"; body: ErrorBody }
  /** An error sealed with the request's key: only the server it was sealed to can have written it. */
  | { kind: "denied"; body: ErrorBody };

export function isCallError(e: unknown): e is CallError {
  return typeof e === "object" && e !== null && "kind" in e;
}

export type Fetch = typeof globalThis.fetch;

function isErrorBody(v: unknown): v is ErrorBody {
  const b = v as ErrorBody;
  return (
    typeof v === "object" && v !== null && typeof b.code === "number" && typeof b.name === "string"
  );
}

export class Transport {
  constructor(
    private readonly fetchImpl: Fetch,
    private readonly timeoutMs: number,
  ) {}

  private async send(
    base: string,
    path: string,
    init: RequestInit,
  ): Promise<{ status: number; text: string }> {
    const url = base.replace(/\/+$/, "") + path;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      // No cookies: the protocol needs none, and the server allows none across origins.
      const resp = await this.fetchImpl(url, {
        ...init,
        credentials: "omit",
        signal: abort.signal,
      });
      return { status: resp.status, text: await resp.text() };
    } catch (e) {
      // In a browser a page whose origin no handshake code names sees the same failure.
      const hint = "location" in globalThis ? " (or no handshake code names this page's host)" : "";
      const unreachable: CallError = {
        kind: "unreachable",
        message: `${base}: ${(e as Error).message ?? e}${hint}`,
      };
      throw unreachable;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `GET /api/v2/hello`. Not trusted yet: see `certificateProblem`. */
  async hello(base: string): Promise<ServerHello> {
    const { status, text } = await this.send(base, PATH_HELLO, { method: "GET" });
    const unreachable = (message: string): CallError => ({
      kind: "unreachable",
      message: `${base}: ${message}`,
    });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw unreachable(
        status === 404
          ? `no protocol ${PROTOCOL_VERSION} here (HTTP 404)`
          : `HTTP ${status} without a Tally answer`,
      );
    }
    if (status >= 200 && status < 300) {
      const hello = body as ServerHello;
      if (typeof hello.uuid !== "string" || typeof hello.encryption_key !== "string") {
        throw unreachable("not a Tally server");
      }
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw unreachable(
          `the server speaks protocol ${hello.protocol}, this SDK ${PROTOCOL_VERSION}`,
        );
      }
      return hello;
    }
    if (status === 404) {
      throw unreachable(
        `no protocol ${PROTOCOL_VERSION} here (HTTP 404): an older Tally server, or not a Tally server`,
      );
    }
    if (isErrorBody(body)) {
      const refused: CallError = { kind: "refused", body };
      throw refused;
    }
    throw unreachable(`HTTP ${status} without a Tally answer`);
  }

  /**
   * Seals `request` to `serverKey` for `purpose`, posts it to `path` and opens the reply. Also
   * returns the report-session key of this request (an authorization's ticket unlocks it).
   */
  async sealed<Resp>(
    base: string,
    path: string,
    purpose: string,
    serverKey: Uint8Array,
    request: unknown,
  ): Promise<{ response: Resp; sessionKey: Uint8Array }> {
    let sealed: Awaited<ReturnType<typeof sealRequest>>;
    try {
      sealed = await sealRequest(serverKey, purpose, utf8(JSON.stringify(request)));
    } catch (e) {
      // A key the server showed that cannot be sealed to: nothing usable came from it.
      const unreachable: CallError = {
        kind: "unreachable",
        message: `${base}: ${(e as Error).message ?? e}`,
      };
      throw unreachable;
    }
    const { envelope, replyKey } = sealed;
    const response = await this.post<Resp>(base, path, envelope, (sealed) => replyKey.open(sealed));
    return { response, sessionKey: replyKey.session };
  }

  /** Sends `request` as message `seq` of a report session and opens the reply. */
  async inSession<Resp>(
    base: string,
    ticket: string,
    seq: number,
    key: Uint8Array,
    request: unknown,
  ): Promise<Resp> {
    const envelope: SessionEnvelope = {
      v: ENVELOPE_VERSION,
      ticket,
      seq,
      ct: sealMessage(key, Direction.ToServer, seq, ticket, utf8(JSON.stringify(request))),
    };
    return this.post<Resp>(base, PATH_SESSION_REPORT, envelope, (sealed) =>
      openMessage(key, Direction.ToClient, seq, ticket, sealed.ct),
    );
  }

  /** Posts `body`; reads a sealed answer whatever the status (which only mirrors the error inside), or a plain error. */
  private async post<Resp>(
    base: string,
    path: string,
    body: unknown,
    open: (sealed: SealedResponse) => Uint8Array,
  ): Promise<Resp> {
    const { status, text } = await this.send(base, path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const unreachable = (message: string): CallError => ({
      kind: "unreachable",
      message: `${base}: ${message}`,
    });
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw unreachable(`HTTP ${status} without a Tally answer`);
    }
    const sealed = answer as SealedResponse;
    if (
      typeof answer === "object" &&
      answer !== null &&
      typeof sealed.ct === "string" &&
      !("code" in answer)
    ) {
      let reply: Reply<Resp>;
      try {
        reply = JSON.parse(fromUtf8(open(sealed))) as Reply<Resp>;
      } catch {
        throw unreachable("the reply could not be decrypted");
      }
      if ("ok" in reply) return reply.ok;
      if ("err" in reply && isErrorBody(reply.err)) {
        const denied: CallError = { kind: "denied", body: reply.err };
        throw denied;
      }
      throw unreachable("unexpected reply");
    }
    if (isErrorBody(answer)) {
      const refused: CallError = { kind: "refused", body: answer };
      throw refused;
    }
    throw unreachable(`HTTP ${status} without a Tally answer`);
  }
}
