// `bollard explain route` run as users run it, over the same case table as the route compiler's tests.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadRouteCases } from "../../ingress/test/route-cases.ts";
import { runBollard } from "./helpers.ts";

const explain = (args: string[]) => runBollard(["explain", "route", ...args]);

for (const c of loadRouteCases()) {
  describe(`explain route over ${c.name}`, () => {
    for (const m of c.matches) {
      test(m.url, async () => {
        const { code, stdout, stderr } = await explain(["-f", c.fixture, "--url", m.url]);
        assert.equal(code, 0, stderr);
        assert.equal(stdout.split("\n").length, 2, "one JSON line");
        assert.deepEqual(JSON.parse(stdout), m.expect);
      });
    }
  });
}

describe("explain route input", () => {
  const cases = loadRouteCases();
  const hosts = cases.find((c) => c.name === "hosts");
  const paths = cases.find((c) => c.name === "path-types");
  assert.ok(hosts && paths);

  test("reads several -f and directories, merging their objects", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      copyFileSync(paths.fixture, join(dir, "paths.yaml"));
      writeFileSync(join(dir, "notes.txt"), "not a manifest");
      const { code, stdout } = await explain(["-f", dir, "-f", hosts.fixture, "--url", "http://foo.com/aaa/x"]);
      assert.equal(code, 0);
      // foo.com now has the rules of both fixtures; /aaa comes from path-types.
      assert.equal(JSON.parse(stdout).service, "aaa");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("kinds it does not read are skipped, even ones named like object properties", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      writeFileSync(join(dir, "odd.yaml"), "kind: constructor\nmetadata: {name: a}\n---\nkind: toString\nmetadata: {name: b}\n");
      const r = await explain(["-f", paths.fixture, "-f", dir, "--url", "http://foo.com/aaa/x"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).service, "aaa");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an invalid file exits 2 with the file named on stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      const bad = join(dir, "bad.yaml");
      writeFileSync(bad, "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n");
      const r = await explain(["-f", bad, "--url", "http://foo.com/"]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /bad\.yaml: Service \(object 1\) has no metadata\.name/);
      writeFileSync(bad, "kind: [\n");
      const r2 = await explain(["-f", bad, "--url", "http://foo.com/"]);
      assert.equal(r2.code, 2);
      assert.match(r2.stderr, /bad\.yaml: document 1/);
      const r3 = await explain(["-f", join(dir, "missing.yaml"), "--url", "http://foo.com/"]);
      assert.equal(r3.code, 2);
      assert.match(r3.stderr, /missing\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad flags exit 2", async () => {
    assert.equal((await explain(["-f", hosts.fixture])).code, 2);
    assert.equal((await explain(["--url", "http://foo.com/"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "not a url"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "http://x/", "--bogus"])).code, 2);
  });
});
