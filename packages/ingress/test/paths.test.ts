// normalizePath: the form request and rule paths are matched in (decoded once, dot elements resolved,
// slashes merged), and what is refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizePath } from "../src/router/paths.ts";

const cases: [raw: string, normalized: string | null][] = [
  ["/", "/"],
  ["/a/b", "/a/b"],
  ["/a/b/", "/a/b/"],
  ["//a///b//", "/a/b/"],
  ["/a/./b", "/a/b"],
  ["/a/.", "/a/"],
  ["/a/b/..", "/a/"],
  ["/a/b/../c", "/a/c"],
  ["/a/../..", null],
  ["/..", null],
  ["/../a", null],
  ["/.hidden/x", "/.hidden/x"],
  ["/a/..b", "/a/..b"],
  ["/%61dmin", "/admin"],
  ["/%2e%2e/a", null],
  ["/a/%2E%2e/b", "/b"],
  ["/a%2Fb", "/a/b"],
  ["/a%2f..%2fb", "/b"],
  ["/%2561", "/%61"], // decoded once only
  ["/a%20b", "/a b"],
  ["/caf%C3%A9", "/caf\xc3\xa9"], // bytes
  ["/café", "/caf\xc3\xa9"], // a rule path's characters count as their UTF-8 bytes
  ["/a%", null],
  ["/a%4", null],
  ["/a%zz", null],
  ["/a%00b", null],
  ["/a+b", "/a+b"],
  ["a/b", null],
  ["", null],
];

for (const [raw, normalized] of cases) {
  test(`${JSON.stringify(raw)} → ${JSON.stringify(normalized)}`, () => {
    assert.equal(normalizePath(raw), normalized);
  });
}
