// `bollard explain allocation` run as users run it, over the allocator's fixture table.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runBollard } from "./helpers.ts";

const fixtures = join(import.meta.dirname, "..", "..", "controller", "test", "fixtures", "allocation");

const explain = (args: string[]) => runBollard(["explain", "allocation", ...args]);

describe("explain allocation over the allocator fixtures", () => {
  for (const file of readdirSync(fixtures).filter((name) => name.endsWith(".yaml")).sort()) {
    test(file, async () => {
      const expected = JSON.parse(readFileSync(join(fixtures, file.replace(/\.yaml$/, ".json")), "utf8"));
      const { code, stdout, stderr } = await explain(["-f", join(fixtures, file)]);
      if ("errors" in expected) {
        assert.equal(code, 2);
        assert.equal(stdout, "");
        for (const message of expected.errors as string[]) assert.ok(stderr.includes(message), `stderr names: ${message}\n${stderr}`);
      } else {
        assert.equal(code, 0, stderr);
        assert.equal(stdout.split("\n").length, 2, "one JSON line");
        assert.deepEqual(JSON.parse(stdout), expected);
      }
    });
  }
});

describe("explain allocation input", () => {
  test("reads several -f and directories; pools from one file serve Services from another", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-allocation-"));
    try {
      writeFileSync(
        join(dir, "pool.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: elsewhere}\nspec: {addresses: [10.1.1.1-10.1.1.2]}\n",
      );
      writeFileSync(join(dir, "notes.txt"), "not a manifest");
      const services = `${dir}-services.yaml`;
      writeFileSync(
        services,
        [
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n",
          "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a, namespace: x}, spec: {type: LoadBalancer}}\n",
          "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.1.1.1}]}}\n",
        ].join("---\n"),
      );
      const { code, stdout, stderr } = await explain(["-f", services, "-f", dir]);
      assert.equal(code, 0, stderr);
      // b held 10.1.1.1 in its status, so it keeps it even though a comes first.
      assert.deepEqual(JSON.parse(stdout), {
        services: [
          { namespace: "x", name: "a", ips: ["10.1.1.2"], pool: "p" },
          { namespace: "x", name: "b", ips: ["10.1.1.1"], pool: "p" },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}-services.yaml`, { force: true });
    }
  });

  test("pools of the same name in two namespaces are refused, naming both", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-allocation-"));
    try {
      copyFileSync(join(fixtures, "basic-ipv4.yaml"), join(dir, "a.yaml"));
      writeFileSync(
        join(dir, "b.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: mylocal-net-pool, namespace: other}\nspec: {addresses: [10.9.9.9/32]}\n",
      );
      const { code, stdout, stderr } = await explain(["-f", dir]);
      assert.equal(code, 2);
      assert.equal(stdout, "");
      assert.match(stderr, /pool "mylocal-net-pool" metadata\.name: defined in namespace "metallb-system" and again in "other"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a file that is not YAML exits 2 naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-allocation-"));
    try {
      const bad = join(dir, "bad.yaml");
      writeFileSync(bad, "kind: Service\n  bad: [indent\n");
      const { code, stderr } = await explain(["-f", bad]);
      assert.equal(code, 2);
      assert.ok(stderr.includes(bad), stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("no -f is a usage error", async () => {
    const { code, stderr } = await explain([]);
    assert.equal(code, 2);
    assert.match(stderr, /-f PATH is required/);
  });
});
