import assert from "node:assert/strict";
import { test } from "node:test";

import { isUuid, uuidV4, uuidV7 } from "../src/ids.js";
import * as usage from "../src/usage.js";
import { ErrorCode, TallyError } from "../src/errors.js";
import { MAX_FEATURES_PER_REPORT, MAX_FEATURE_LEN, sliceEnd, sliceOf } from "../src/wire.js";

test("slices are absolute 3-minute UTC boundaries", () => {
  assert.equal(sliceOf(0), 0);
  assert.equal(sliceOf(179), 0);
  assert.equal(sliceOf(180), 1);
  assert.equal(sliceOf(-1), -1);
  assert.equal(sliceEnd(sliceOf(200)), 360);
});

test("slices close into reports whose ids are fixed and time-ordered", () => {
  const book = usage.emptyBook();
  usage.record(book, 0, "scan", 2);
  usage.record(book, 179, "scan", 1);
  assert.equal(book.pending.length, 0);
  assert.equal(usage.waiting(book), 1);
  usage.record(book, 180, "page", 1);
  assert.equal(book.pending.length, 1);
  assert.equal(book.pending[0]?.slice, 0);
  assert.equal(book.pending[0]?.counts["scan"], 3);
  const id = book.pending[0]!.report_id;
  usage.closeOpen(book);
  usage.closeOpen(book);
  assert.equal(book.pending.length, 2);
  assert.equal(book.pending[0]?.report_id, id);
  assert.ok(id < book.pending[1]!.report_id, "ids are time-ordered");
  assert.equal(usage.acknowledge(book, new Set([id])), 1);
  assert.equal(book.pending.length, 1);
});

test("a slice with many features makes several reports", () => {
  const book = usage.emptyBook();
  for (let i = 0; i < MAX_FEATURES_PER_REPORT * 2 + 1; i++) usage.record(book, 0, `f${i}`, 1);
  usage.closeOpen(book);
  assert.deepEqual(
    book.pending.map((r) => Object.keys(r.counts).length),
    [64, 64, 1],
  );
  assert.equal(new Set(book.pending.map((r) => r.report_id)).size, 3);
});

test("counters stay exact integers, and reports expire after thirty days", () => {
  const book = usage.emptyBook();
  usage.record(book, 0, "scan", Number.MAX_SAFE_INTEGER);
  usage.record(book, 0, "scan", 5);
  assert.equal(book.open?.counts["scan"], Number.MAX_SAFE_INTEGER);
  usage.closeOpen(book);
  assert.equal(usage.expire(book, 180 + usage.RETENTION_SECONDS), 0);
  assert.equal(usage.expire(book, 180 + usage.RETENTION_SECONDS + 1), 1);
  assert.equal(book.pending.length, 0);
});

test("feature names are checked before they are stored", () => {
  usage.checkFeature("scan.symbology.qr");
  usage.checkFeature("a".repeat(MAX_FEATURE_LEN));
  for (const bad of ["", "has space", "tab\t", "é", "a".repeat(MAX_FEATURE_LEN + 1)]) {
    assert.throws(
      () => usage.checkFeature(bad),
      (e: unknown) => e instanceof TallyError && e.code === ErrorCode.InvalidInput,
      JSON.stringify(bad),
    );
  }
});

test("device ids are random version-4 UUIDs, report ids version 7 and ordered within a millisecond", () => {
  const a = uuidV4();
  assert.ok(isUuid(a));
  assert.equal(a[14], "4");
  assert.notEqual(a, uuidV4());
  // 2100-01-01, later than any id made before in this process.
  const ids = Array.from({ length: 5000 }, () => uuidV7(4_102_444_800_000));
  assert.ok(ids.every((id) => isUuid(id) && id[14] === "7"));
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids[0]?.startsWith("03bb2cc3-d800-7"), "the time is in front");
  assert.ok(ids.at(-1)?.startsWith("03bb2cc3-d801-7"), "4096 ids a millisecond, then the next one");
});
