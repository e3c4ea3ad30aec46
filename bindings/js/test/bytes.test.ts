import assert from "node:assert/strict";
import { test } from "node:test";

import { fromBase64, toBase64, u64be, utf8 } from "../src/bytes.js";

test("base64 is standard, padded and read strictly, as the server reads it", () => {
  for (const text of ["", "f", "fo", "foo", "foob", "fooba", "foobar", "é€"]) {
    const bytes = utf8(text);
    assert.equal(toBase64(bytes), Buffer.from(bytes).toString("base64"));
    assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
  }
  assert.deepEqual(fromBase64("+/8="), Uint8Array.of(0xfb, 0xff));
  for (const bad of ["Zg", "Zg=", "Zh==", "Zm9v\n", "-_8=", "Zg==Zg==", "====", "Z==="]) {
    assert.throws(() => fromBase64(bad), /invalid base64/, bad);
  }
});

test("message numbers are eight big-endian bytes", () => {
  assert.deepEqual(u64be(1), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(u64be(2 ** 40 + 2), Uint8Array.of(0, 0, 1, 0, 0, 0, 0, 2));
  assert.throws(() => u64be(-1));
  assert.throws(() => u64be(2 ** 53));
});
