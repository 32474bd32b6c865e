// `bollard explain announcer` run as users run it, over the speaker's election case table.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runBollard } from "./helpers.ts";

const fixtures = join(import.meta.dirname, "..", "..", "speaker", "test", "fixtures", "election");

const explain = (args: string[]) => runBollard(["explain", "announcer", ...args]);

interface Case {
  files: string[];
  liveNodes?: string[];
  ignoreExcludeLB?: boolean;
  lastGoodPoolFiles?: string[];
  expected: Array<{ namespace: string; name: string; ip: string; node: string | null; reason?: string }>;
}

describe("explain announcer over the election cases", () => {
  for (const name of readdirSync(fixtures).filter((n) => n !== "base")) {
    const dir = join(fixtures, name);
    const c = JSON.parse(readFileSync(join(dir, "case.json"), "utf8")) as Case;
    test(name, async () => {
      const args = c.files.flatMap((file) => ["-f", join(dir, file)]);
      if (c.liveNodes) args.push("--live-nodes", c.liveNodes.join(","));
      if (c.ignoreExcludeLB) args.push("--ignore-exclude-lb");
      const { code, stdout, stderr } = await explain(args);
      assert.equal(code, 0, stderr);
      assert.equal(stdout.split("\n").length, 2, "one JSON line");
      // A case whose pools are invalid elects, in the speaker, with the last good pools it remembers; offline
      // there are none, so every address is in no pool, and stderr says why.
      const offline = c.lastGoodPoolFiles !== undefined;
      const expected = c.expected.map(({ namespace, name, ip, node, reason }) =>
        offline
          ? { namespace, name, ip, node: null, reason: "no IPAddressPool contains the address" }
          : node === null
            ? { namespace, name, ip, node, reason }
            : { namespace, name, ip, node },
      );
      assert.deepEqual(JSON.parse(stdout), { announcements: expected });
      if (offline) assert.match(stderr, /invalid pool configuration, no pool used: pool /);
    });
  }
});

describe("explain announcer input", () => {
  test("prints the issue's example shape, reading a directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-announcer-"));
    try {
      for (const file of ["cluster.yaml", "advertise-all.yaml", "web.yaml"]) {
        writeFileSync(join(dir, file), readFileSync(join(fixtures, "base", file)));
      }
      writeFileSync(
        join(dir, "db.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 192.168.1.241}]}}\n",
      );
      writeFileSync(join(dir, "notes.txt"), "not a manifest");
      const { code, stdout } = await explain(["-f", dir, "--live-nodes", "node1,node2"]);
      assert.equal(code, 0);
      // Files are read in name order: db.yaml before web.yaml.
      assert.deepEqual(JSON.parse(stdout), {
        announcements: [
          { namespace: "default", name: "db", ip: "192.168.1.241", node: null, reason: "no ready endpoints" },
          { namespace: "default", name: "web", ip: "192.168.1.240", node: "node1" },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("kinds it does not read are skipped, even ones named like object properties", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-announcer-"));
    try {
      writeFileSync(join(dir, "odd.yaml"), "kind: constructor\nmetadata: {name: a}\n---\nkind: toString\nmetadata: {name: b}\n");
      const base = await explain(["-f", join(fixtures, "base")]);
      const r = await explain(["-f", join(fixtures, "base"), "-f", dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), JSON.parse(base.stdout));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an empty --live-nodes means no live speaker", async () => {
    const { code, stdout } = await explain(["-f", join(fixtures, "base"), "--live-nodes", ""]);
    assert.equal(code, 0);
    assert.equal(JSON.parse(stdout).announcements[0].node, null);
  });

  test("without -f: usage error, exit 2", async () => {
    const { code, stderr } = await explain([]);
    assert.equal(code, 2);
    assert.match(stderr, /-f PATH is required/);
  });

  test("broken YAML names the file, exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-announcer-"));
    try {
      writeFileSync(join(dir, "bad.yaml"), "kind: Node\nmetadata: {name: [\n");
      const { code, stderr, stdout } = await explain(["-f", join(dir, "bad.yaml")]);
      assert.equal(code, 2);
      assert.equal(stdout, "");
      assert.match(stderr, /bad\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing file is named, exit 2", async () => {
    const { code, stderr } = await explain(["-f", "/nonexistent/bollard.yaml"]);
    assert.equal(code, 2);
    assert.match(stderr, /\/nonexistent\/bollard\.yaml/);
  });

  test("a bad L2Advertisement is reported on stderr and skipped; a bad pool invalidates the pool configuration, as MetalLB", async () => {
    const { code, stdout, stderr } = await explain(["-f", join(fixtures, "base"), "-f", join(fixtures, "bad-config", "objects.yaml")]);
    assert.equal(code, 0);
    assert.match(stderr, /ignoring L2Advertisement metallb-system\/typo/);
    assert.match(stderr, /invalid pool configuration, no pool used: pool "broken"/);
    // Offline there is no last good configuration to keep, so no address is in a pool.
    assert.deepEqual(JSON.parse(stdout).announcements[0], { namespace: "default", name: "web", ip: "192.168.1.240", node: null, reason: "no IPAddressPool contains the address" });
  });
});

describe("explain announcer in BGP mode", () => {
  test("says which nodes announce which prefix to which peers, with communities and local-pref", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-bgp-"));
    try {
      writeFileSync(join(dir, "cluster.yaml"), readFileSync(join(import.meta.dirname, "..", "..", "speaker", "test", "fixtures", "bgp-announce", "cluster.yaml")));
      writeFileSync(
        join(dir, "advertisement.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: rack-b, namespace: metallb-system}\nspec: {ipAddressPools: [public], aggregationLengthV6: 124, localPref: 150, communities: [no-export], nodeSelectors: [{matchLabels: {rack: b}}]}\n",
      );
      const { code, stdout, stderr } = await explain(["-f", dir]);
      assert.equal(code, 0, stderr);
      const out = JSON.parse(stdout) as { bgp: { announcements: unknown[]; notAnnounced: unknown[] } };
      const common = { namespace: "default", name: "web", node: "node3", peer: "core", communities: ["65535:65281"], localPref: 150, advertisements: ["rack-b"] };
      assert.deepEqual(out.bgp, {
        announcements: [
          { ...common, ip: "192.168.10.5", prefix: "192.168.10.5/32" },
          { ...common, ip: "fd00:10::5", prefix: "fd00:10::/124" },
        ],
        notAnnounced: [],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
