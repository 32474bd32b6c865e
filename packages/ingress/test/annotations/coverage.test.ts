// Every ingress-nginx annotation Bollard names has both kinds of test: a fixture table here
// (packages/ingress/test/annotations/) and requests through the real proxy with real backends
// (packages/dataplane/test/policy/). An annotation added without them fails here.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { test } from "node:test";
import { NGINX_ANNOTATIONS } from "../../src/annotations/catalog.ts";

/** Names not tested yet, each with the reason; a name that gains its tests must leave this list. */
const EXCEPTIONS = new Map<string, string>([]);

const testFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".test.ts") && join(dir, f) !== import.meta.filename)
    .map((f) => ({ name: f, text: readFileSync(join(dir, f), "utf8") }));

const tables = testFiles(import.meta.dirname);
const endToEnd = testFiles(join(import.meta.dirname, "../../../dataplane/test/policy"));

/** whether `name` appears as a whole annotation name (not as part of a longer one: canary in canary-weight) */
const mentions = (text: string, name: string) => new RegExp(`(?<![\\w-])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w-])`).test(text);
const filesNaming = (files: { name: string; text: string }[], name: string) => files.filter((f) => mentions(f.text, name)).map((f) => f.name);

test("the lists are read: the catalog's annotations and both folders' test files", () => {
  assert.ok(NGINX_ANNOTATIONS.length > 90, `${NGINX_ANNOTATIONS.length} annotations`);
  assert.ok(NGINX_ANNOTATIONS.includes("auth-type"));
  assert.ok(tables.length > 5 && !tables.some((f) => f.name === basename(import.meta.filename)));
  assert.ok(endToEnd.length > 5);
  assert.deepEqual(filesNaming([{ name: "x", text: 'a({ "canary-weight": "5" })' }], "canary"), [], "a longer name is not a mention");
  assert.deepEqual(filesNaming([{ name: "x", text: 'a({ canary: "true" })' }], "canary"), ["x"]);
});

test("every annotation has a fixture table and an end-to-end test", () => {
  const missing: string[] = [];
  for (const name of NGINX_ANNOTATIONS) {
    if (EXCEPTIONS.has(name)) continue;
    const where = [
      ["a fixture table in packages/ingress/test/annotations/", filesNaming(tables, name)],
      ["an end-to-end test in packages/dataplane/test/policy/", filesNaming(endToEnd, name)],
    ] as const;
    for (const [what, files] of where) if (files.length === 0) missing.push(`${name} lacks ${what}`);
  }
  assert.deepEqual(missing, []);
});

test("an exception is dropped once its annotation has both tests", () => {
  const stale = [...EXCEPTIONS.keys()].filter((name) => filesNaming(tables, name).length > 0 && filesNaming(endToEnd, name).length > 0);
  assert.deepEqual(stale, [], "these have their tests now: remove them from EXCEPTIONS");
  for (const name of EXCEPTIONS.keys()) assert.ok(NGINX_ANNOTATIONS.includes(name), `${name} is not in the catalog`);
});
