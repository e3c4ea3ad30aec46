import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { ErrorCode, fallbackCode, knownCodes, TallyError } from "../src/errors.js";

const table = readFileSync(new URL("../../../../../docs/error-codes.md", import.meta.url), "utf8");

test("the SDK's codes are the table's of docs/error-codes.md, every one", () => {
  const rows = [...table.matchAll(/^\| (\d+) \| `([a-z_]+)` \|/gm)].map((m) => [
    Number(m[1]),
    m[2],
  ]);
  assert.ok(rows.length > 40);
  assert.deepEqual(knownCodes(), rows);
});

test("server refusals keep their code; unknown ones are mapped by family and keep their number", () => {
  const known = TallyError.fromServer({
    code: 118,
    name: "origin_not_allowed",
    message: "not this page",
  });
  assert.equal(known.code, ErrorCode.OriginNotAllowed);
  assert.equal(known.codeName, "origin_not_allowed");
  assert.equal(known.message, "118 origin_not_allowed: not this page");
  assert.ok(known.endsGrant());
  const unknown = TallyError.fromServer({ code: 142, name: "device_blocked", message: "blocked" });
  assert.equal(unknown.code, ErrorCode.NoMatchingLicense);
  assert.equal(unknown.serverCode, 142);
  assert.match(unknown.message, /142 device_blocked: blocked/);
  assert.ok(!unknown.endsGrant(), "only a code the SDK knows ends the grant");
  assert.ok(!new TallyError(ErrorCode.SeatsExhausted, "made up locally").endsGrant());
  assert.equal(fallbackCode(250), ErrorCode.BadRequest);
  assert.equal(fallbackCode(599), ErrorCode.Internal);
});
