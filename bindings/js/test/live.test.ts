/**
 * The SDK against a real Tally server, from Node (no `Origin`: the server treats it as a native
 * SDK). The Rust test `sdk_browser` starts the server and names it here:
 * `TALLY_TEST_SERVER`, `TALLY_TEST_VENDOR_KEY`, `TALLY_TEST_HANDSHAKE_CODE`, `TALLY_TEST_PRODUCT`
 * and `TALLY_TEST_DOMAIN`. Without them these tests are skipped, with that reason.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ManualClock } from "../src/clock.js";
import { TallyClient, type TallyConfig } from "../src/client.js";
import { ErrorCode, TallyError } from "../src/errors.js";
import { MemoryStorage } from "../src/storage.js";
import { signingKeys } from "./fixtures.js";

const env = process.env;
const server = env["TALLY_TEST_SERVER"];
const skip =
  server === undefined
    ? "no server: run through `cargo test -p tally-cli --test it sdk_browser`"
    : false;

function config(storage: MemoryStorage, clock: ManualClock, servers = [server ?? ""]): TallyConfig {
  return {
    servers,
    vendorPublicKey: env["TALLY_TEST_VENDOR_KEY"] ?? "",
    product: env["TALLY_TEST_PRODUCT"] ?? "",
    handshakeCode: env["TALLY_TEST_HANDSHAKE_CODE"] ?? "",
    domain: env["TALLY_TEST_DOMAIN"] ?? "",
    friendlyName: "node test",
    storage,
    clock,
  };
}

const realNow = () => Math.floor(Date.now() / 1000);

async function refusedWith(promise: Promise<unknown>, code: number): Promise<TallyError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof TallyError, String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected the stable code ${code}`);
}

test("authorizes, verifies the chain, reports usage in the session, once", { skip }, async () => {
  const storage = new MemoryStorage();
  // A device clock ten days behind: requests are stamped with the offset the hello showed.
  const clock = new ManualClock(realNow() - 10 * 86_400);
  const client = new TallyClient(config(storage, clock));
  const auth = await client.authorize();
  assert.equal(auth.cached, false);
  assert.deepEqual(auth.warnings, []);
  assert.equal(auth.grant.handshake_code, env["TALLY_TEST_HANDSHAKE_CODE"]);
  assert.equal(auth.grant.device_uuid, client.deviceUuid);
  assert.equal(auth.grant.items[0]?.license_type, "per-domain");

  await client.recordUsage("export", 2);
  await client.recordUsage("export", 0);
  const first = await client.flush();
  assert.deepEqual([first.sent, first.acknowledged, first.pending], [1, 1, 0]);
  // Nothing left: no call at all.
  assert.deepEqual((await client.flush()).sent, 0);
  assert.equal((await client.status()).pendingReports, 0);

  // The same device in another client object: the device id and grant are in storage.
  const again = new TallyClient(config(storage, clock));
  assert.equal(again.deviceUuid, client.deviceUuid);
  assert.equal((await again.check()).grant.grant_id, auth.grant.grant_id);
});

test(
  "offline, the held grant works until valid_until, and never with the clock turned back",
  { skip },
  async () => {
    const storage = new MemoryStorage();
    const clock = new ManualClock(realNow());
    const online = await new TallyClient(config(storage, clock)).authorize();
    const offline = new TallyClient(config(storage, clock, ["http://127.0.0.1:1"]));
    const cached = await offline.authorize();
    assert.equal(cached.cached, true);
    assert.deepEqual(cached.warnings, [ErrorCode.CachedGrantUsed]);
    assert.equal(cached.grant.grant_id, online.grant.grant_id);

    clock.set(online.grant.valid_until - 1);
    assert.equal((await offline.check()).cached, true);
    clock.set(online.grant.valid_until);
    const expired = await refusedWith(offline.authorize(), ErrorCode.GrantExpired);
    assert.match(expired.message, /127\.0\.0\.1:1/, "it says why no server answered");
    clock.set(online.grant.valid_until - 1000);
    await refusedWith(offline.check(), ErrorCode.ClockRollback);
    await refusedWith(offline.authorize(), ErrorCode.ClockRollback);

    // Nothing held at all: the server could not be reached, and that is what is said.
    const fresh = new TallyClient(config(new MemoryStorage(), clock, ["http://127.0.0.1:1"]));
    await refusedWith(fresh.authorize(), ErrorCode.ServerUnreachable);
    await refusedWith(fresh.check(), ErrorCode.NoGrant);
  },
);

test(
  "a refusal the server seals ends the held grant; usage stays for later",
  { skip },
  async () => {
    const storage = new MemoryStorage();
    const clock = new ManualClock(realNow());
    await new TallyClient(config(storage, clock)).authorize();
    const renamed = new TallyClient({ ...config(storage, clock), handshakeCode: "no-such-code" });
    await refusedWith(renamed.authorize(), ErrorCode.UnknownHandshakeCode);
    // Going offline now does not bring the grant back: the server's refusal is remembered.
    const offline = new TallyClient(config(storage, clock, ["http://127.0.0.1:1"]));
    await refusedWith(offline.authorize(), ErrorCode.UnknownHandshakeCode);
    await offline.recordUsage("export", 1);
    await refusedWith(offline.flush(), ErrorCode.ServerUnreachable);
    assert.equal((await offline.status()).pendingReports, 1, "the report is kept");
    // Back online with the right code: the kept report is delivered, and authorized again.
    const back = new TallyClient(config(storage, clock));
    assert.equal((await back.flush()).acknowledged, 1);
    assert.equal((await back.authorize()).cached, false);
    assert.equal((await back.check()).cached, true);
  },
);

test("a server that cannot prove the vendor's activation is not trusted", { skip }, async () => {
  const clock = new ManualClock(realNow());
  const other = new TallyClient({
    ...config(new MemoryStorage(), clock),
    // The key of another vendor.
    vendorPublicKey: signingKeys().public,
  });
  await refusedWith(other.authorize(), ErrorCode.ServerNotTrusted);
});
