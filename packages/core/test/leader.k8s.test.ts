import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeRequest, type LeaderElection, runLeaderElection } from "../src/index.ts";
import { createNamespace, deleteNamespace, eventually, testKubeConfig, testLogger } from "./k8s-helpers.ts";

type Lease = {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number };
};

// Short periods keep the tests quick; their ratio is the default one.
const fast = { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 };

describe("Lease leader election against the API server", () => {
  let kubeConfig: KubeConfig;
  let ns: string;
  const readLease = (name: string) => kubeRequest<Lease>(kubeConfig, { path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}` });

  function candidate(name: string, identity: string, extra: { onStarted?: (signal: AbortSignal) => void; onStopped?: () => void } = {}) {
    const stop = new AbortController();
    const election: LeaderElection = runLeaderElection({
      kubeConfig,
      namespace: ns,
      name,
      identity,
      ...fast,
      logger: testLogger,
      signal: stop.signal,
      onStartedLeading: (signal) => extra.onStarted?.(signal),
      onStoppedLeading: () => extra.onStopped?.(),
    });
    return { identity, election, stop: () => stop.abort() };
  }

  before(async () => {
    kubeConfig = testKubeConfig();
    ns = await createNamespace(kubeConfig, "core-leader");
  });
  after(() => deleteNamespace(kubeConfig, ns));

  it("elects exactly one of two candidates, and the Lease names it", async () => {
    const a = candidate("one-of-two", "a");
    const b = candidate("one-of-two", "b");
    try {
      await eventually(() => a.election.isLeader() || b.election.isLeader(), "someone leads");
      const leader = a.election.isLeader() ? a : b;
      const renewedAt = (await readLease("one-of-two")).spec.renewTime ?? "";
      // Watch for longer than a lease lasts: never both, never none, and the leader keeps renewing.
      for (let i = 0; i < 100; i++) {
        assert.ok(!(a.election.isLeader() && b.election.isLeader()), "two leaders at once");
        assert.ok(leader.election.isLeader(), "the leader stepped down while renewals should succeed");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const lease = await readLease("one-of-two");
      assert.ok((lease.spec.renewTime ?? "") > renewedAt, "renewTime advanced");
      assert.equal(lease.spec.leaseTransitions, 0);
      assert.equal(lease.spec.holderIdentity, leader.identity);
      assert.equal(lease.spec.leaseDurationSeconds, 3);
      await eventually(() => (leader === a ? b : a).election.leader() === leader.identity, "the follower sees the leader");
    } finally {
      a.stop();
      b.stop();
      await Promise.all([a.election.done, b.election.done]);
    }
  });

  it("releases the lease on a clean stop, after the leader's work has finished", async () => {
    let workFinished = false;
    const stopped: string[] = [];
    const stop = new AbortController();
    const election = runLeaderElection({
      kubeConfig,
      namespace: ns,
      name: "release",
      identity: "solo",
      ...fast,
      logger: testLogger,
      signal: stop.signal,
      onStartedLeading: async (leaderSignal) => {
        await new Promise((resolve) => leaderSignal.addEventListener("abort", resolve, { once: true }));
        const lease = await readLease("release");
        assert.equal(lease.spec.holderIdentity, "solo", "still held while the leader winds down");
        workFinished = true;
      },
      onStoppedLeading: () => stopped.push("stopped"),
    });
    await eventually(() => election.isLeader(), "solo leads");
    stop.abort();
    await election.done;
    assert.equal(workFinished, true);
    assert.deepEqual(stopped, ["stopped"]);
    assert.equal(election.isLeader(), false);
    const lease = await readLease("release");
    assert.equal(lease.spec.holderIdentity, "", "holderIdentity cleared so a successor need not wait");
  });

  it("hands over at once after a clean stop: the successor need not wait out a long lease", async () => {
    const long = { leaseDurationSeconds: 3600, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 };
    const start = (identity: string) => {
      const stop = new AbortController();
      const election = runLeaderElection({ kubeConfig, namespace: ns, name: "handover", identity, ...long, logger: testLogger, signal: stop.signal, onStartedLeading: () => {} });
      return { election, stop: () => stop.abort() };
    };
    const first = start("first");
    await eventually(() => first.election.isLeader(), "first leads");
    const second = start("second");
    await eventually(() => second.election.leader() === "first", "second sees first");
    first.stop();
    await first.election.done;
    // With an hour-long lease, only the release lets the second candidate in within the test's bound.
    await eventually(() => second.election.isLeader(), "second takes over");
    const lease = await readLease("handover");
    assert.equal(lease.spec.holderIdentity, "second");
    assert.equal(lease.spec.leaseTransitions, 1);
    second.stop();
    await second.election.done;
  });

  it("takes over from a leader that died without releasing, once its lease expires", async () => {
    const script = fileURLToPath(new URL("./fixtures/elector.ts", import.meta.url));
    const child = spawn(process.execPath, [script, process.env.BOLLARD_KUBECONFIG ?? "", ns, "crash", "doomed"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let childLeads = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "LEADING") childLeads = true;
    });
    let survivor: ReturnType<typeof candidate> | undefined;
    try {
      await eventually(() => childLeads || child.exitCode !== null, "the child process leads");
      assert.equal(child.exitCode, null, "the elector process exited before leading");
      survivor = candidate("crash", "survivor");
      const follower = survivor;
      await eventually(() => follower.election.leader() === "doomed", "survivor sees the doomed leader");
      assert.equal(survivor.election.isLeader(), false);
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      assert.equal((await readLease("crash")).spec.holderIdentity, "doomed", "a killed leader cannot release");
      await eventually(() => follower.election.isLeader(), "survivor takes over after expiry");
      assert.equal((await readLease("crash")).spec.holderIdentity, "survivor");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      survivor?.stop();
      await survivor?.election.done;
    }
  });

  it("aborts leaderSignal and calls onStoppedLeading when another holder takes the Lease", async () => {
    let leaderSignal: AbortSignal | undefined;
    let stoppedCount = 0;
    const c = candidate("usurped", "victim", {
      onStarted: (signal) => {
        leaderSignal = signal;
      },
      onStopped: () => stoppedCount++,
    });
    try {
      await eventually(() => c.election.isLeader(), "victim leads");
      // Another controller (with its own, longer lease) overwrites the Lease, as a split brain would.
      const lease = await readLease("usurped");
      const now = new Date().toISOString().replace("Z", "000Z");
      await kubeRequest(kubeConfig, {
        method: "PUT",
        path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/usurped`,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "usurper", leaseDurationSeconds: 3600, renewTime: now, acquireTime: now } },
      });
      await eventually(() => leaderSignal?.aborted === true, "leaderSignal aborted");
      assert.equal(c.election.isLeader(), false);
      assert.equal(stoppedCount, 1);
      assert.equal(c.election.leader(), "usurper");
      assert.equal((await readLease("usurped")).spec.holderIdentity, "usurper", "the victim did not write over the usurper");
    } finally {
      c.stop();
      await c.election.done;
    }
    assert.equal((await readLease("usurped")).spec.holderIdentity, "usurper", "stopping does not release a lease held by another");
  });

  it("refuses periods that cannot work", () => {
    assert.throws(
      () =>
        runLeaderElection({
          kubeConfig,
          namespace: ns,
          name: "x",
          identity: "x",
          leaseDurationSeconds: 5,
          renewDeadlineSeconds: 10,
          logger: testLogger,
          signal: AbortSignal.abort(),
          onStartedLeading: () => {},
        }),
      RangeError,
    );
  });
});
