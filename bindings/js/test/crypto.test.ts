import assert from "node:assert/strict";
import { test } from "node:test";

import { ed25519 } from "@noble/curves/ed25519.js";

import { fromBase64, fromUtf8, toBase64, utf8 } from "../src/bytes.js";
import { certificateProblem, verifyGrant } from "../src/chain.js";
import { verifyActivated, verifyCertificate } from "../src/documents.js";
import { info, openRequest, sealRequest, suite } from "../src/envelope.js";
import { ErrorCode, TallyError } from "../src/errors.js";
import { Direction, openMessage, sealMessage } from "../src/session.js";
import { verifyStrict } from "../src/signature.js";
import * as f from "./fixtures.js";

test("the HPKE suite is the server's: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305", () => {
  assert.equal(suite.kem.id, 0x0020);
  assert.equal(suite.kdf.id, 0x0001);
  assert.equal(suite.aead.id, 0x0003);
  assert.equal(fromUtf8(info("authorize")), "tally/v2 authorize");
});

test("a sealed request opens only for its server and purpose, and only its sender reads the reply", async () => {
  const s = f.server("s-1");
  const key = fromBase64(s.identity.encryption_key);
  const { envelope, replyKey } = await sealRequest(key, "authorize", utf8("hello"));
  assert.equal(envelope.v, 2);
  assert.equal(fromBase64(envelope.enc).length, 32);
  const opened = await openRequest(s.encryptionSecret, "authorize", envelope);
  assert.equal(fromUtf8(opened.plaintext), "hello");
  assert.deepEqual(opened.replyKey.session, replyKey.session);
  assert.notDeepEqual(replyKey.session, replyKey.reply);
  assert.equal(fromUtf8(replyKey.open(opened.replyKey.seal(utf8("granted")))), "granted");

  await assert.rejects(openRequest(s.encryptionSecret, "report", envelope));
  await assert.rejects(openRequest(f.server("other").encryptionSecret, "authorize", envelope));
  const ct = fromBase64(envelope.ct);
  ct[0] = (ct[0] ?? 0) ^ 1;
  await assert.rejects(
    openRequest(s.encryptionSecret, "authorize", { ...envelope, ct: toBase64(ct) }),
  );
  // Another request's reply key cannot open this reply.
  const other = await sealRequest(key, "authorize", utf8("b"));
  assert.throws(() => other.replyKey.open(opened.replyKey.seal(utf8("x"))));
});

test("a session message opens only with the same direction, number and ticket", () => {
  const key = new Uint8Array(32).fill(9);
  const ct = sealMessage(key, Direction.ToServer, 5, "t", utf8("report"));
  assert.equal(fromUtf8(openMessage(key, Direction.ToServer, 5, "t", ct)), "report");
  assert.throws(() => openMessage(key, Direction.ToClient, 5, "t", ct));
  assert.throws(() => openMessage(key, Direction.ToServer, 6, "t", ct));
  assert.throws(() => openMessage(key, Direction.ToServer, 5, "u", ct));
  assert.throws(() => openMessage(new Uint8Array(32).fill(8), Direction.ToServer, 5, "t", ct));
  assert.notEqual(
    ct,
    sealMessage(key, Direction.ToServer, 5, "t", utf8("report")),
    "a fresh nonce each time",
  );
});

test("signatures are checked strictly: canonical, no small-order key", () => {
  const k = f.signingKeys();
  const pk = fromBase64(k.public);
  const sig = ed25519.sign(utf8("m"), k.secret);
  assert.ok(verifyStrict(pk, utf8("m"), sig));
  assert.ok(!verifyStrict(pk, utf8("M"), sig));
  // The identity point as public key, with a signature that would pass a lax check.
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const weak = new Uint8Array(64);
  weak.set(identity, 0);
  assert.ok(!verifyStrict(identity, utf8("anything"), weak));
  // S not reduced modulo the group order.
  const unreduced = sig.slice();
  unreduced[63] = (unreduced[63] ?? 0) | 0xf0;
  assert.ok(!verifyStrict(pk, utf8("m"), unreduced));
});

test("every byte of a document matters", () => {
  const vendor = f.signingKeys();
  const s = f.server("s-1");
  const text = f.certificate(vendor, "L-1", s.identity);
  const vendorKey = fromBase64(vendor.public);
  assert.deepEqual(verifyCertificate(text, vendorKey).server, s.identity);
  for (let i = 0; i < text.length; i++) {
    const flipped =
      text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
    assert.throws(() => verifyCertificate(flipped, vendorKey), Error, `byte ${i}`);
  }
  assert.throws(() => verifyCertificate(`${text}\n`, vendorKey));
  assert.throws(() => verifyCertificate(text.slice(0, -1), vendorKey));
  assert.throws(
    () => verifyCertificate(text, fromBase64(f.signingKeys().public)),
    /not signed by the vendor/,
  );
  // A document of another kind is not a certificate.
  const lic = f.activated(vendor, f.license("L-1", [f.item("L-1-1")]), [s.identity]);
  assert.throws(() => verifyCertificate(lic, vendorKey), /first line/);
  assert.equal(verifyActivated(lic, vendorKey).license.license_id, "L-1");
});

test("an activation must name distinct servers, each with its own certificate", () => {
  const vendor = f.signingKeys();
  const vendorKey = fromBase64(vendor.public);
  const a = f.server("a");
  const l = f.license("L-1", [f.item("L-1-1")]);
  const twice = f.seal(
    "ACTIVATED LICENSE",
    {
      format: "tally-activated-license/3",
      license: l,
      servers: [a.identity, a.identity],
      activated_at: f.T0,
      certificates: [
        f.certificate(vendor, "L-1", a.identity),
        f.certificate(vendor, "L-1", a.identity),
      ],
    },
    vendor,
  );
  assert.throws(() => verifyActivated(twice, vendorKey), /share an identity/);
  const foreign = f.seal(
    "ACTIVATED LICENSE",
    {
      format: "tally-activated-license/3",
      license: l,
      servers: [a.identity],
      activated_at: f.T0,
      certificates: [f.certificate(vendor, "L-2", a.identity)],
    },
    vendor,
  );
  assert.throws(() => verifyActivated(foreign, vendorKey), /another activation/);
  const oldFormat = f.seal(
    "ACTIVATED LICENSE",
    { format: "tally-activated-license/1", license: l },
    vendor,
  );
  assert.throws(() => verifyActivated(oldFormat, vendorKey), /unsupported/);
});

function grantInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TallyError);
    assert.equal(e.code, ErrorCode.GrantInvalid);
    assert.match(e.message, pattern);
    return true;
  });
}

test("a grant verifies from the vendor key down, and only within what the vendor signed", () => {
  const vendor = f.signingKeys();
  const vendorKey = fromBase64(vendor.public);
  const s = f.server("s-1");
  const device = "7f1e2d3c-0000-4000-8000-000000000001";
  const proof = [f.activated(vendor, f.license("L-1", [f.item("L-1-1")]), [s.identity])];
  const good = f.grant(s, device);
  assert.deepEqual(verifyGrant(vendorKey, s.identity, proof, f.signGrant(good, s), device), good);
  assert.equal(
    certificateProblem(vendorKey, s.identity, f.certificate(vendor, "L-1", s.identity)),
    undefined,
  );
  assert.match(certificateProblem(vendorKey, s.identity, undefined) ?? "", /shows no license/);
  assert.match(
    certificateProblem(
      vendorKey,
      f.server("s-2").identity,
      f.certificate(vendor, "L-1", s.identity),
    ) ?? "",
    /other keys/,
  );

  grantInvalid(
    () => verifyGrant(vendorKey, s.identity, [], f.signGrant(good, s), device),
    /no license activated/,
  );
  const elsewhere = f.server("s-2");
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        [f.activated(vendor, f.license("L-1", [f.item("L-1-1")]), [elsewhere.identity])],
        f.signGrant(good, s),
        device,
      ),
    /no license activated/,
  );
  grantInvalid(
    () => verifyGrant(vendorKey, s.identity, proof, f.signGrant(good, elsewhere), device),
    /not signed by the server/,
  );
  grantInvalid(
    () => verifyGrant(vendorKey, s.identity, proof, f.signGrant(good, s), "another-device"),
    /issued to device/,
  );
  const claims = (overrides: Partial<typeof good>) => f.signGrant({ ...good, ...overrides }, s);
  const item = good.items[0]!;
  grantInvalid(
    () => verifyGrant(vendorKey, s.identity, proof, claims({ items: [] }), device),
    /no license item/,
  );
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        proof,
        claims({ items: [{ ...item, item_id: "L-1-9" }] }),
        device,
      ),
    /not in any license/,
  );
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        proof,
        claims({ items: [{ ...item, end: item.end + 1 }] }),
        device,
      ),
    /claims more/,
  );
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        proof,
        claims({ items: [{ ...item, modules: ["pdf", "ocr"] }] }),
        device,
      ),
    /claims more/,
  );
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        proof,
        claims({ items: [{ ...item, license_type: "per-device" }] }),
        device,
      ),
    /claims more/,
  );
  grantInvalid(
    () =>
      verifyGrant(
        vendorKey,
        s.identity,
        proof,
        claims({ valid_until: f.T0 + 373 * f.DAY }),
        device,
      ),
    /beyond the end/,
  );
  grantInvalid(
    () => verifyGrant(vendorKey, s.identity, proof, claims({ server_uuid: "s-2" }), device),
    /names server/,
  );
});
