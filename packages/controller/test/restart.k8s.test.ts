// Restarts and replicas of `bollard controller` (child processes) against the real API server.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { leaseName } from "../src/index.ts";
import { type ControllerProcess, ips, kube, metricValue, startController, suffix, type TestNamespace, testNamespace, waitFor } from "./k8s-helpers.ts";

const config = kube();

async function allocatedAll(ns: TestNamespace, names: string[]): Promise<Map<string, string>> {
  return waitFor(`${names.length} Services to get addresses`, async () => {
    const byName = new Map((await ns.listServices()).map((s) => [s.metadata.name, s]));
    const result = new Map<string, string>();
    for (const name of names) {
      const ip = ips(byName.get(name) ?? ({} as never))[0];
      if (ip === undefined) return undefined;
      result.set(name, ip);
    }
    return result;
  }, 120_000);
}

async function inBatches<T>(items: T[], action: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += 10) await Promise.all(items.slice(i, i + 10).map(action));
}

describe("bollard controller restarts and replicas", () => {
  before(() => {
    assert.ok(process.env.BOLLARD_KUBECONFIG, "BOLLARD_KUBECONFIG must be set (run through test/run.ts)");
  });

  test("a restart with 50 allocated Services and churn changes no address", async () => {
    const ns = await testNamespace(config, "ctl-restart");
    const lbClass = `bollard.test/${suffix()}`;
    const running: ControllerProcess[] = [];
    const start = () => {
      const controller = startController({ namespace: ns.namespace, lbClass });
      running.push(controller);
      return controller;
    };
    try {
      await ns.createPool("p", { addresses: ["10.70.0.0/26"] });
      const originals = Array.from({ length: 50 }, (_, i) => `s${i}`);
      const first = start();
      await inBatches(originals, (name) => ns.createService(name, { lbClass }));
      const assigned = await allocatedAll(ns, originals);
      assert.equal(new Set(assigned.values()).size, 50, "50 distinct addresses");
      assert.equal(await first.stop(), 0);

      // Churn while no controller runs: Services go, new ones come (they sort after the
      // originals by age, but must still never take a held address), one asks for a held
      // address outright, and originals change.
      const gone = originals.slice(0, 5);
      await inBatches(gone, (name) => ns.deleteService(name));
      const newcomers = Array.from({ length: 5 }, (_, i) => `n${i}`);
      await inBatches(newcomers, (name) => ns.createService(name, { lbClass }));
      await ns.createService("thief", { lbClass, annotations: { "metallb.io/loadBalancerIPs": assigned.get("s10") as string } });
      await inBatches(originals.slice(20, 30), (name) => ns.patchService(name, { metadata: { labels: { churn: "yes" } } }));

      // Restart, with more churn while it starts.
      const second = start();
      const lateComers = Array.from({ length: 3 }, (_, i) => `m${i}`);
      await Promise.all([...lateComers.map((name) => ns.createService(name, { lbClass })), ns.deleteService("s5")]);
      const kept = originals.filter((name) => !gone.includes(name) && name !== "s5");
      const after = await allocatedAll(ns, [...kept, ...newcomers, ...lateComers]);
      for (const name of kept) assert.equal(after.get(name), assigned.get(name), `${name} keeps its address`);
      const heldByKept = new Set(kept.map((name) => assigned.get(name)));
      for (const name of [...newcomers, ...lateComers]) assert.ok(!heldByKept.has(after.get(name)), `${name} got a free address, not a held one`);
      assert.equal(new Set(after.values()).size, after.size, "no address given twice");
      const refused = await waitFor("AllocationFailed on thief", async () =>
        (await ns.events()).find((e) => e.regarding.name === "thief" && e.reason === "AllocationFailed"),
      );
      assert.match(refused.note, /^SharingConflict: /);
      assert.deepEqual(ips(await ns.getService("thief")), []);
      assert.equal((await ns.events()).filter((e) => e.reason === "ClearAssignment").length, 0, "nothing was cleared");

      // A restart without changes writes nothing at all to the Services.
      const versions = new Map((await ns.listServices()).map((s) => [s.metadata.name, (s.metadata as { resourceVersion?: string }).resourceVersion]));
      assert.equal(await second.stop(), 0);
      const third = start();
      await waitFor("the third controller to plan", async () => (third.logs.some((l) => l.msg === "pool configuration loaded") ? true : undefined));
      // The pool status write comes after every Service of the plan; once it is current, the plan is done.
      await waitFor("pool status", async () => ((await ns.getPool("p")).status?.assignedIPv4 === after.size ? true : undefined));
      for (const service of await ns.listServices()) {
        assert.equal((service.metadata as { resourceVersion?: string }).resourceVersion, versions.get(service.metadata.name), `${service.metadata.name} untouched`);
      }
      assert.equal(await third.stop(), 0);
    } finally {
      await Promise.all(running.map((controller) => controller.stop()));
      await ns.delete();
    }
  });

  test("two replicas: one leader writes; when it stops the other takes over", async () => {
    const ns = await testNamespace(config, "ctl-replicas");
    const lbClass = `bollard.test/${suffix()}`;
    const replicas = [
      startController({ namespace: ns.namespace, lbClass, identity: `replica-a-${suffix()}` }),
      startController({ namespace: ns.namespace, lbClass, identity: `replica-b-${suffix()}` }),
    ];
    try {
      const lease = leaseName(lbClass);
      const holder = await waitFor("a lease holder", () => ns.leaseHolder(lease));
      const leader = replicas.find((r) => r.identity === holder);
      const follower = replicas.find((r) => r.identity !== holder);
      assert.ok(leader && follower, `the holder ${holder} is one of the replicas`);
      await waitFor("the leader metric on both replicas", async () =>
        metricValue(await leader.metrics(), "bollard_controller_leader") === 1 && metricValue(await follower.metrics(), "bollard_controller_leader") === 0
          ? true
          : undefined,
      );

      await ns.createPool("p", { addresses: ["10.80.0.0/28"] });
      await ns.createService("one", { lbClass });
      const one = await allocatedAll(ns, ["one"]);
      assert.equal(one.get("one"), "10.80.0.0");
      const allocatedBy = (replica: ControllerProcess, service: string) =>
        replica.logs.some((l) => l.msg === "address allocated" && l.service === `${ns.namespace}/${service}`);
      await waitFor("the leader's log of the allocation", async () => (allocatedBy(leader, "one") ? true : undefined));
      assert.ok(!allocatedBy(follower, "one"), "the follower wrote nothing");

      assert.equal(await leader.stop(), 0);
      await waitFor("the follower to take the lease", async () => ((await ns.leaseHolder(lease)) === follower.identity ? true : undefined));
      await ns.createService("two", { lbClass });
      const two = await allocatedAll(ns, ["two"]);
      assert.equal(two.get("two"), "10.80.0.1");
      await waitFor("the new leader's log of the allocation", async () => (allocatedBy(follower, "two") ? true : undefined));
      assert.deepEqual(ips(await ns.getService("one")), ["10.80.0.0"]);
    } finally {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await ns.delete();
    }
  });
});
