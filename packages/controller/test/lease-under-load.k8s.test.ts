// Leases before Events: 2,000 Services that cannot get an address (2,000 AllocationFailed Events, each about
// another object) must not cost the controller its Lease. Events go through a bounded, rate-limited queue and
// the Lease is renewed on a connection of its own, so renewals stay on time while the burst is written.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { kubeRequest } from "@bollard/core";
import { leaseName } from "../src/index.ts";
import { kube, metricValue, startController, suffix, testNamespace, waitFor } from "./k8s-helpers.ts";

const config = kube();
const SERVICES = 2000;
/** The controller's renew deadline (runLeaderElection's default): a leader that cannot renew within it steps down. */
const RENEW_DEADLINE_MS = 10_000;

type Lease = { spec?: { holderIdentity?: string; renewTime?: string; leaseTransitions?: number } };

describe("leases before events", () => {
  before(() => {
    assert.ok(process.env.BOLLARD_KUBECONFIG, "BOLLARD_KUBECONFIG must be set (run through test/run.ts)");
  });

  test(`${SERVICES} failing Services (PoolExhausted Events): the leader keeps its Lease and renews on time`, async () => {
    const ns = await testNamespace(config, "ctl-lease-load");
    const lbClass = `bollard.test/${suffix()}`;
    const controller = startController({ namespace: ns.namespace, lbClass });
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${ns.namespace}/leases/${leaseName(lbClass)}`;
    let polling = true;
    try {
      await ns.createPool("tiny", { addresses: ["10.71.0.1/32"] });
      await waitFor("the controller to lead", async () => (metricValue(await controller.metrics(), "bollard_controller_leader") === 1 ? true : undefined));
      const first = await kubeRequest<Lease>(config, { path: leasePath });
      assert.equal(first.spec?.holderIdentity, controller.identity);
      const transitions = first.spec?.leaseTransitions;

      // Watch the Lease while the burst runs: every renewTime seen, with the holder.
      const seen: { renewTime: number; holder: string | undefined; transitions: number | undefined }[] = [];
      const poller = (async () => {
        while (polling) {
          const lease = await kubeRequest<Lease>(config, { path: leasePath }).catch(() => undefined);
          const renewTime = Date.parse(lease?.spec?.renewTime ?? "");
          if (lease !== undefined && Number.isFinite(renewTime) && seen.at(-1)?.renewTime !== renewTime) {
            seen.push({ renewTime, holder: lease.spec?.holderIdentity, transitions: lease.spec?.leaseTransitions });
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();

      const names = Array.from({ length: SERVICES }, (_, i) => `svc-${i}`);
      const burstStart = Date.now();
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(names.slice(i, i + 50).map((name) => ns.createService(name, { lbClass })));
      }
      // The burst is being handled: one Service has the address, and failures are being reported.
      await waitFor(
        "AllocationFailed Events to be written",
        async () => ((await ns.events()).filter((e) => e.reason === "AllocationFailed").length >= 100 ? true : undefined),
        180_000,
      );
      // Keep watching for a while after the burst: the Event queue drains at its own rate meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 2 * RENEW_DEADLINE_MS));
      polling = false;
      await poller;
      const burstEnd = Date.now();

      assert.ok(seen.length >= 3, `renewals seen during the burst: ${seen.length}`);
      for (const s of seen) {
        assert.equal(s.holder, controller.identity, "the Lease never changed hands");
        assert.equal(s.transitions, transitions, "no Lease transition");
      }
      const gaps = seen.slice(1).map((s, i) => s.renewTime - (seen[i] as { renewTime: number }).renewTime);
      const longest = Math.max(...gaps, burstEnd - (seen.at(-1) as { renewTime: number }).renewTime);
      assert.ok(longest < RENEW_DEADLINE_MS, `longest time between renewals ${longest} ms (burst ${burstEnd - burstStart} ms)`);
      assert.equal(metricValue(await controller.metrics(), "bollard_controller_leader"), 1);
      assert.ok(!controller.logs.some((l) => l.msg === "lost leadership"), "the controller never stepped down");
    } finally {
      polling = false;
      assert.equal(await controller.stop(), 0, "the controller exits 0 on SIGTERM");
      await ns.delete();
    }
  });
});
