/**
 * The protocol test vectors every SDK checks (`docs/sdk/test-vectors.json`, described in
 * `docs/sdk/test-vectors.md`): the same bytes the Rust side made must open, verify and fail here
 * exactly as they do there.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { ed25519 } from "@noble/curves/ed25519.js";

import { concat, fromBase64, fromUtf8, toBase64, toHex, utf8 } from "../src/bytes.js";
import { trustedHello, verifyGrant } from "../src/chain.js";
import { localVerdict } from "../src/client.js";
import { info, openRequest, ReplyKey, sealRequest, suite } from "../src/envelope.js";
import { ErrorCode, TallyError } from "../src/errors.js";
import { Direction, messageAad, openMessage, sealMessage } from "../src/session.js";
import { verifyingKey } from "../src/signature.js";
import type {
  AuthorizeRequest,
  AuthorizeResponse,
  Envelope,
  Grant,
  ServerHello,
  SignedGrant,
} from "../src/wire.js";

const vectors = JSON.parse(
  readFileSync(new URL("../../../../../docs/sdk/test-vectors.json", import.meta.url), "utf8"),
);

interface Expected {
  code: number;
  name: string;
}

/** Runs `fn` and returns the stable code it ends with: the one thrown, or none. */
async function outcome(fn: () => unknown): Promise<number | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof TallyError, `not a stable error: ${e}`);
    return e.code;
  }
}

const direction = (d: string) => (d === "to_server" ? Direction.ToServer : Direction.ToClient);

test("the vectors are of this protocol and this suite", () => {
  assert.equal(vectors.format, "tally-test-vectors/1");
  assert.equal(vectors.protocol, 2);
  const c = vectors.constants;
  assert.deepEqual(
    [c.hpke_kem_id, c.hpke_kdf_id, c.hpke_aead_id],
    [suite.kem.id, suite.kdf.id, suite.aead.id],
  );
  assert.equal(fromUtf8(info(vectors.authorize.purpose)), c.hpke_info_authorize);
  assert.equal(c.session_direction_to_server, Direction.ToServer);
  assert.equal(c.session_direction_to_client, Direction.ToClient);
});

test("authorize: the request opens with the server's key, both exported keys match, the reply opens", async () => {
  const a = vectors.authorize;
  const secret = fromBase64(vectors.keys.server_encryption_secret_key);
  const opened = await openRequest(secret, a.purpose, a.envelope as Envelope);
  assert.equal(fromUtf8(opened.plaintext), a.request_json);
  assert.equal(opened.replyKey.reply.length, vectors.constants.hpke_export_length);
  assert.deepEqual(opened.replyKey.reply, fromBase64(a.reply_key));
  assert.deepEqual(opened.replyKey.session, fromBase64(a.session_key));
  const replyKey = new ReplyKey(fromBase64(a.reply_key), fromBase64(a.session_key));
  assert.equal(fromUtf8(replyKey.open(a.sealed_reply)), a.reply_json);

  // The reply's grant verifies for the request's device, from the server of `keys`, and its
  // session is the report session's.
  const request = JSON.parse(a.request_json) as AuthorizeRequest;
  const reply = (JSON.parse(a.reply_json) as { ok: AuthorizeResponse }).ok;
  const k = vectors.keys;
  const server = {
    uuid: k.server_uuid,
    signing_key: k.server_signing_public_key,
    encryption_key: k.server_encryption_public_key,
  };
  const vendor = verifyingKey(k.vendor_public_key);
  const grant = verifyGrant(vendor, server, reply.certificates, reply.grant, request.device_uuid);
  assert.equal(grant.device_uuid, request.device_uuid);
  assert.equal(reply.session?.ticket, vectors.report_session.ticket);

  for (const bad of a.request_must_fail as Array<{
    case: string;
    open_as: string;
    envelope: Envelope;
    expected_error: Expected;
  }>) {
    await assert.rejects(openRequest(secret, bad.open_as, bad.envelope), bad.case);
    assert.equal(bad.expected_error.code, ErrorCode.BadEnvelope, bad.case);
  }
  for (const bad of a.reply_must_fail as Array<{
    case: string;
    sealed_reply: { ct: string };
    expected_error: Expected;
  }>) {
    // A reply that does not open is no answer: the SDK moves on as if the server were down.
    assert.throws(() => replyKey.open(bad.sealed_reply), Error, bad.case);
    assert.equal(bad.expected_error.code, ErrorCode.ServerUnreachable, bad.case);
  }
});

test("grant chain: each case verifies to its grant, or fails with its code", async () => {
  const vendor = verifyingKey(vectors.keys.vendor_public_key);
  const cases = vectors.grant_chain as Array<{
    case: string;
    device_uuid: string;
    at: number;
    hello: ServerHello;
    grant: SignedGrant;
    certificates: string[];
    expected_grant?: Grant;
    expected_error?: Expected;
  }>;
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    let verified: Grant | undefined;
    const code = await outcome(() => {
      const trusted = trustedHello(vendor, c.hello);
      if ("problem" in trusted) throw new TallyError(ErrorCode.ServerNotTrusted, trusted.problem);
      verified = verifyGrant(vendor, trusted.identity, c.certificates, c.grant, c.device_uuid);
      return localVerdict(verified, c.at);
    });
    if (c.expected_error !== undefined) {
      assert.equal(code, c.expected_error.code, `${c.case}: expected ${c.expected_error.name}`);
    } else {
      assert.equal(code, undefined, c.case);
      assert.deepEqual(verified, c.expected_grant, c.case);
    }
  }
});

test("report session: associated data, request and reply open; every altered message fails", () => {
  const r = vectors.report_session;
  const key = fromBase64(r.session_key);
  for (const m of [r.request, r.reply]) {
    assert.equal(toHex(messageAad(direction(m.direction), m.seq, r.ticket)), m.aad_hex);
    assert.equal(
      fromUtf8(openMessage(key, direction(m.direction), m.seq, r.ticket, m.ct)),
      m.plaintext_json,
    );
  }
  assert.deepEqual(r.request_envelope, {
    v: 2,
    ticket: r.ticket,
    seq: r.request.seq,
    ct: r.request.ct,
  });
  for (const bad of r.must_fail as Array<{
    case: string;
    direction: string;
    seq: number;
    ticket: string;
    ct: string;
    expected_error: Expected;
  }>) {
    assert.throws(
      () => openMessage(key, direction(bad.direction), bad.seq, bad.ticket, bad.ct),
      Error,
      bad.case,
    );
    const expected =
      bad.direction === "to_server" ? ErrorCode.BadEnvelope : ErrorCode.ServerUnreachable;
    assert.equal(bad.expected_error.code, expected, bad.case);
  }
});

test("sealing: requests round-trip, replies and session messages are the same bytes, signatures too", async () => {
  const k = vectors.keys;
  const a = vectors.authorize;
  // HPKE: the encapsulated key is random, so compare what the receiver gets.
  const { envelope, replyKey } = await sealRequest(
    fromBase64(k.server_encryption_public_key),
    a.purpose,
    utf8(a.request_json),
  );
  const opened = await openRequest(fromBase64(k.server_encryption_secret_key), a.purpose, envelope);
  assert.equal(fromUtf8(opened.plaintext), a.request_json);
  assert.deepEqual(opened.replyKey.reply, replyKey.reply);
  assert.deepEqual(opened.replyKey.session, replyKey.session);
  // The reply has no randomness: the same bytes.
  const reply = new ReplyKey(fromBase64(a.reply_key), fromBase64(a.session_key));
  assert.equal(reply.seal(utf8(a.reply_json)).ct, a.sealed_reply.ct);
  // A session message with the vector's nonce: the same bytes.
  const r = vectors.report_session;
  for (const m of [r.request, r.reply]) {
    const nonce = fromBase64(m.ct).subarray(0, vectors.constants.session_nonce_length);
    const sealed = sealMessage(
      fromBase64(r.session_key),
      direction(m.direction),
      m.seq,
      r.ticket,
      utf8(m.plaintext_json),
      nonce,
    );
    assert.equal(sealed, m.ct);
  }
  // Ed25519 is deterministic: the server's signature on the valid grant, exactly.
  const valid = vectors.grant_chain.find((c: { case: string }) => c.case === "grant_chain.valid");
  const signature = ed25519.sign(
    concat(utf8(vectors.constants.grant_signing_context), fromBase64(valid.grant.payload)),
    fromBase64(k.server_signing_secret_key),
  );
  assert.equal(toBase64(signature), valid.grant.signature);
});
