// Table-driven: each fixtures/election/<case>/case.json names YAML files (objects in) and the
// expected announcements (JSON out). Node orders were worked out independently with sha256sum.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadPools } from "@bollard/core";
import { parseAllDocuments } from "yaml";
import { type ElectionInput, electAnnouncers } from "../src/election/elect.ts";
import { groupObjects } from "../src/election/snapshot.ts";

const fixtures = join(import.meta.dirname, "fixtures", "election");

interface Case {
  description: string;
  files: string[];
  liveNodes?: string[];
  /** Files whose IPAddressPools are the last good pool configuration (the shell's memory). */
  lastGoodPoolFiles?: string[];
  ignoreExcludeLB?: boolean;
  expected: unknown[];
  expectedConfigErrors?: Array<{ kind: string; namespace: string; name: string }>;
}

function readObjects(dir: string, files: string[]): unknown[] {
  return files.flatMap((file) => parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((doc) => doc.toJS()));
}

describe("electAnnouncers", () => {
  for (const name of readdirSync(fixtures).filter((n) => n !== "base")) {
    const dir = join(fixtures, name);
    const testCase = JSON.parse(readFileSync(join(dir, "case.json"), "utf8")) as Case;
    it(`${name}: ${testCase.description}`, () => {
      const objects = groupObjects(readObjects(dir, testCase.files));
      let lastGoodPools: ElectionInput["lastGoodPools"];
      if (testCase.lastGoodPoolFiles !== undefined) {
        const loaded = loadPools(groupObjects(readObjects(dir, testCase.lastGoodPoolFiles)).pools);
        assert.ok("pools" in loaded, "the last good pools load");
        lastGoodPools = loaded.pools;
      }
      const result = electAnnouncers(
        { ...objects, liveSpeakers: testCase.liveNodes ? new Set(testCase.liveNodes) : null, lastGoodPools },
        { ignoreExcludeLB: testCase.ignoreExcludeLB ?? false, loadBalancerClass: null },
      );
      assert.deepEqual(result.announcements, testCase.expected);
      assert.deepEqual(
        result.configErrors.map(({ kind, namespace, name }) => ({ kind, namespace, name })),
        testCase.expectedConfigErrors ?? [],
      );
      for (const error of result.configErrors) assert.match(error.message, /\S/);
      assert.equal(result.pools === null, result.configErrors.some((e) => e.kind === "IPAddressPool"), "pools is null exactly when the pools are invalid");
    });
  }
});

describe("groupObjects", () => {
  it("names the object that has no kind", () => {
    assert.throws(() => groupObjects([{ kind: "Node", metadata: { name: "a" } }, { metadata: { name: "b" } }]), /object #2: has no kind/);
  });
  it("names the kind without metadata.name", () => {
    assert.throws(() => groupObjects([{ kind: "Service", metadata: {} }]), /object #1: Service has no metadata.name/);
  });
  it("skips kinds the election does not read and empty documents", () => {
    const grouped = groupObjects([null, { kind: "ConfigMap", metadata: { name: "x" } }, { kind: "Node", metadata: { name: "n" } }]);
    assert.equal(grouped.nodes.length, 1);
    assert.equal(grouped.services.length, 0);
  });
});
