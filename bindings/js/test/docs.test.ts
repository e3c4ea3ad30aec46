import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../../../../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

test("docs/sdk/browser.md quotes the example page the browser test loads, unchanged", () => {
  const doc = read("docs/sdk/browser.md");
  const page = read("bindings/js/example/index.html");
  const marker = "<!-- bindings/js/example/index.html -->\n```html\n";
  const at = doc.indexOf(marker);
  assert.ok(at >= 0, "the page has no quoted example");
  const quoted = doc.slice(at + marker.length, doc.indexOf("```\n", at + marker.length));
  assert.equal(
    quoted,
    page,
    "docs/sdk/browser.md and bindings/js/example/index.html differ: copy the page into the doc",
  );
});
