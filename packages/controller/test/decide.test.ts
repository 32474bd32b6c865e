// decide(), table-driven: a snapshot and a memory in, writes, Events and the next memory out. A fake
// writer (as MetalLB's controller tests use a fake client) applies a decision's writes to the
// snapshot — or fails the ones a case names — and reports back as the executor does.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backoffEnded,
  type Decision,
  decide,
  emptyMemory,
  type Memory,
  observeService,
  poolKey,
  serviceWriteLanded,
  type Snapshot,
  writeFailed,
} from "../src/reconciler/decide.ts";
import type { PoolResource, ServiceResource } from "../src/reconciler/resources.ts";

const NOW = "2026-01-01T00:00:00Z";

function pool(name: string, addresses: string[], extra: Record<string, unknown> = {}): PoolResource {
  return { metadata: { name, namespace: "metallb-system", uid: `uid-${name}`, resourceVersion: "1", generation: 1 }, spec: { addresses, ...extra } };
}

type ServiceOptions = {
  type?: string;
  ips?: string[];
  pool?: string;
  annotations?: Record<string, string>;
  ports?: { port: number; protocol?: string }[];
  created?: string;
};

function service(name: string, options: ServiceOptions = {}): ServiceResource {
  const annotations = { ...options.annotations, ...(options.pool !== undefined ? { "metallb.io/ip-allocated-from-pool": options.pool } : {}) };
  return {
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      resourceVersion: "1",
      annotations,
      creationTimestamp: options.created ?? `2026-01-01T00:00:0${name.length % 10}Z`,
    } as ServiceResource["metadata"],
    spec: { type: options.type ?? "LoadBalancer", ports: options.ports ?? [{ port: 80, protocol: "TCP" }], selector: { app: name } },
    status: options.ips !== undefined ? { loadBalancer: { ingress: options.ips.map((ip) => ({ ip })) } } : {},
  };
}

function snapshot(services: ServiceResource[], pools: PoolResource[], deletions = false): Snapshot {
  return { services, pools, namespaceLabels: () => ({}), lbClass: undefined, now: NOW, deletions };
}

/** What each write does, in a form a table can state. */
function writesOf(decision: Decision): string[] {
  return decision.serviceWrites.map((w) => {
    const parts = [w.key];
    if (w.writeStatus) parts.push(`ips=${(w.write.ips ?? []).join(",") || "-"}`);
    if (w.annotate) parts.push(`pool=${w.write.pool ?? "-"}`);
    if (w.clearing !== undefined) parts.push(`clearing(${w.clearing.held.join(",")})`);
    return parts.join(" ");
  });
}

function eventsOf(decision: Decision): string[] {
  return decision.events.map((e) => `${e.object.name} ${e.reason}: ${e.message}`);
}

/**
 * Applies a decision's Service writes to the Services — except those in `fail`, reported as
 * failed writes to retry — bumping resourceVersions as the API server would, and reports each
 * outcome back; the informer is taken to have shown every landed write by now.
 */
function fakeWrite(services: ServiceResource[], decision: Decision, fail: string[] = []): { services: ServiceResource[]; memory: Memory } {
  let memory = decision.memory;
  let version = 100;
  const byKey = new Map(services.map((s) => [`${s.metadata?.namespace}/${s.metadata?.name}`, s]));
  for (const write of decision.serviceWrites) {
    if (fail.includes(write.key)) {
      memory = writeFailed(memory, write.key, write.write, true);
      continue;
    }
    const current = byKey.get(write.key);
    assert.ok(current, `${write.key} exists`);
    const annotations = { ...current.metadata?.annotations };
    if (write.annotate) {
      delete annotations["metallb.universe.tf/ip-allocated-from-pool"];
      if (write.write.pool === undefined) delete annotations["metallb.io/ip-allocated-from-pool"];
      else annotations["metallb.io/ip-allocated-from-pool"] = write.write.pool;
    }
    const status = write.writeStatus ? { loadBalancer: { ingress: (write.write.ips ?? []).map((ip) => ({ ip })) } } : current.status;
    const updated: ServiceResource = { ...current, metadata: { ...current.metadata, annotations, resourceVersion: String(version++) }, status };
    byKey.set(write.key, updated);
    memory = serviceWriteLanded(memory, write.key, write.write, updated.metadata?.resourceVersion ?? "", true);
  }
  return { services: [...byKey.values()], memory };
}

type Case = {
  name: string;
  services: ServiceResource[];
  pools: PoolResource[];
  writes: string[];
  events?: string[];
};

describe("decide: one pass", () => {
  const cases: Case[] = [
    {
      name: "restart: addresses in Service statuses are kept and nothing is written again; a new Service gets a free one",
      services: [
        service("old-b", { ips: ["10.0.0.2"], pool: "p", created: "2026-01-01T00:00:01Z" }),
        service("old-a", { ips: ["10.0.0.1"], pool: "p", created: "2026-01-01T00:00:02Z" }),
        service("new", { created: "2026-01-01T00:00:03Z" }),
      ],
      pools: [pool("p", ["10.0.0.1-10.0.0.9"])],
      writes: ["default/new ips=10.0.0.3 pool=p"],
    },
    {
      name: "restart: a held address without the pool annotation gets the annotation only; a legacy one goes",
      services: [
        service("bare", { ips: ["10.0.0.5"] }),
        service("legacy", { ips: ["10.0.0.6"], annotations: { "metallb.universe.tf/ip-allocated-from-pool": "p" } }),
      ],
      pools: [pool("p", ["10.0.0.1-10.0.0.9"])],
      writes: ["default/bare pool=p", "default/legacy pool=p"],
    },
    {
      name: "sharing: a key, different ports → one address",
      services: [
        service("tcp", { annotations: { "metallb.io/allow-shared-ip": "dns" }, ports: [{ port: 53, protocol: "TCP" }], created: "2026-01-01T00:00:01Z" }),
        service("udp", { annotations: { "metallb.io/allow-shared-ip": "dns" }, ports: [{ port: 53, protocol: "UDP" }], created: "2026-01-01T00:00:02Z" }),
        service("alone", { ports: [{ port: 53, protocol: "TCP" }], created: "2026-01-01T00:00:03Z" }),
      ],
      pools: [pool("p", ["10.0.0.1-10.0.0.9"])],
      writes: ["default/tcp ips=10.0.0.1 pool=p", "default/udp ips=10.0.0.1 pool=p", "default/alone ips=10.0.0.2 pool=p"],
    },
    {
      name: "sharing: the same port cannot share, the second Service takes the next address",
      services: [
        service("one", { annotations: { "metallb.io/allow-shared-ip": "k" }, created: "2026-01-01T00:00:01Z" }),
        service("two", { annotations: { "metallb.io/allow-shared-ip": "k" }, created: "2026-01-01T00:00:02Z" }),
      ],
      pools: [pool("p", ["10.0.0.1-10.0.0.9"])],
      writes: ["default/one ips=10.0.0.1 pool=p", "default/two ips=10.0.0.2 pool=p"],
    },
    {
      name: "pool change: an address that left the pool is cleared and a new one allocated",
      services: [service("moved", { ips: ["10.0.0.1"], pool: "p" }), service("stays", { ips: ["10.0.1.1"], pool: "p" })],
      pools: [pool("p", ["10.0.1.0/24"])],
      writes: ["default/moved ips=10.0.1.0 clearing(10.0.0.1)"],
    },
    {
      name: "pool change: a Service that is no LoadBalancer any more loses its address and annotation",
      services: [service("gone", { type: "ClusterIP", ips: ["10.0.0.1"], pool: "p" })],
      pools: [pool("p", ["10.0.0.1-10.0.0.9"])],
      writes: ["default/gone ips=- pool=- clearing(10.0.0.1)"],
      events: [],
    },
    {
      name: "exhaustion: AllocationFailed once, no write",
      services: [service("a", { created: "2026-01-01T00:00:01Z" }), service("b", { created: "2026-01-01T00:00:02Z" })],
      pools: [pool("p", ["10.0.0.1/32"])],
      writes: ["default/a ips=10.0.0.1 pool=p"],
      events: ['b AllocationFailed: PoolExhausted: no free IPv4 address in pool "p"'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decide(snapshot(c.services, c.pools), emptyMemory);
      assert.deepEqual(writesOf(decision), c.writes);
      if (c.events !== undefined) assert.deepEqual(eventsOf(decision), c.events);
      // A second pass over the same snapshot, with the writes in flight, writes nothing more.
      assert.deepEqual(writesOf(decide(snapshot(c.services, c.pools), decision.memory)), []);
    });
  }
});

describe("decide: passes with a fake writer", () => {
  it("after the writes land, the next pass writes nothing and reports the pool's usage", () => {
    const pools = [pool("p", ["10.0.0.1-10.0.0.9"])];
    const first = decide(snapshot([service("a"), service("b")], pools), emptyMemory);
    assert.equal(first.serviceWrites.length, 2);
    const landed = fakeWrite([service("a"), service("b")], first);
    const second = decide(snapshot(landed.services, pools), landed.memory);
    assert.deepEqual(writesOf(second), []);
    assert.equal(second.memory.pending.size, 0);
    assert.deepEqual(
      second.poolStatusWrites.map((w) => [w.key, w.status.assignedIPv4, w.status.availableIPv4, w.status.conditions?.[0]?.status]),
      [[poolKey("p"), 2, 7, "True"]],
    );
  });

  it("a failed write is not repeated until its backoff ends, and its address is not given away meanwhile", () => {
    const pools = [pool("p", ["10.0.0.1/32"])];
    const services = [service("a", { created: "2026-01-01T00:00:01Z" })];
    const first = decide(snapshot(services, pools), emptyMemory);
    assert.deepEqual(writesOf(first), ["default/a ips=10.0.0.1 pool=p"]);
    const failed = fakeWrite(services, first, ["default/a"]);
    assert.deepEqual([...failed.memory.backingOff], ["default/a"]);
    assert.equal(failed.memory.pending.size, 0);
    // Backing off: nothing written; a newcomer still does not get a's address while a is planned first.
    const withNewcomer = [...failed.services, service("b", { created: "2026-01-01T00:00:02Z" })];
    const during = decide(snapshot(withNewcomer, pools), failed.memory);
    assert.deepEqual(writesOf(during), []);
    assert.deepEqual(eventsOf(during), ['b AllocationFailed: PoolExhausted: no free IPv4 address in pool "p"']);
    const after = decide(snapshot(withNewcomer, pools), backoffEnded(during.memory, "default/a"));
    assert.deepEqual(writesOf(after), ["default/a ips=10.0.0.1 pool=p"]);
  });

  it("an address being taken from one Service goes to another only once the API shows it gone", () => {
    const pools = [pool("p", ["10.0.0.1/32"])];
    const services = [service("leaving", { type: "ClusterIP", ips: ["10.0.0.1"], pool: "p" }), service("waiting")];
    const first = decide(snapshot(services, pools), emptyMemory);
    assert.deepEqual(writesOf(first), ["default/leaving ips=- pool=- clearing(10.0.0.1)"]);
    // In flight: the waiting Service does not get the address yet.
    assert.deepEqual(writesOf(decide(snapshot(services, pools), first.memory)), []);
    // The clearing write fails: still nobody gets it.
    const failed = fakeWrite(services, first, ["default/leaving"]);
    assert.deepEqual(writesOf(decide(snapshot(failed.services, pools), failed.memory)), []);
    // It lands (informer not caught up yet): the API shows it gone, so the waiting Service gets it.
    const write = first.serviceWrites[0];
    assert.ok(write);
    const landed = serviceWriteLanded(first.memory, write.key, write.write, "7", false);
    assert.deepEqual(writesOf(decide(snapshot(services, pools), landed)), ["default/waiting ips=10.0.0.1 pool=p"]);
  });

  it("a landed write counts until the informer shows its version; that event is an echo unless it frees addresses", () => {
    const pools = [pool("p", ["10.0.0.1-10.0.0.9"])];
    const first = decide(snapshot([service("a")], pools), emptyMemory);
    const write = first.serviceWrites[0];
    assert.ok(write);
    const landed = serviceWriteLanded(first.memory, write.key, write.write, "42", false);
    assert.equal(landed.pending.get("default/a")?.landed, "42");
    // The informer still shows the old copy: the write is held, nothing is written again.
    assert.deepEqual(writesOf(decide(snapshot([service("a")], pools), landed)), []);
    // An older event is no echo and keeps the write counted.
    const older = observeService(landed, "MODIFIED", { ...service("a"), metadata: { ...service("a").metadata, resourceVersion: "41" } });
    assert.equal(older.echo, false);
    assert.equal(older.memory.pending.size, 1);
    const echoed = { ...service("a", { ips: ["10.0.0.1"], pool: "p" }), metadata: { ...service("a", { pool: "p" }).metadata, resourceVersion: "42" } };
    const echo = observeService(older.memory, "MODIFIED", echoed);
    assert.equal(echo.echo, true);
    assert.equal(echo.memory.pending.size, 0);
    // A relist drops landed writes: the list is what the API shows.
    assert.equal(observeService(landed, "RESYNC", undefined).memory.pending.size, 0);
  });

  it("a write replaced by a newer one changes nothing when it lands", () => {
    const pools = [pool("p", ["10.0.0.1-10.0.0.9"])];
    const first = decide(snapshot([service("a")], pools), emptyMemory);
    const stale = first.serviceWrites[0];
    assert.ok(stale);
    const replaced = { ...first.memory, pending: new Map([["default/a", { ...stale.write }]]) };
    assert.equal(serviceWriteLanded(replaced, "default/a", stale.write, "9", false), replaced);
    assert.equal(writeFailed(replaced, "default/a", stale.write, false).pending.get("default/a"), replaced.pending.get("default/a"));
  });

  it("invalid configuration: the last good one stays in use, reported once, on the pool's status", () => {
    const good = [pool("p", ["10.0.0.1-10.0.0.9"])];
    const services = [service("a", { ips: ["10.0.0.1"], pool: "p" })];
    const first = decide(snapshot(services, good), emptyMemory);
    assert.deepEqual(first.config, { errors: [], loaded: true });
    const bad = [pool("p", ["not-an-address"])];
    const second = decide(snapshot([...services, service("b")], bad), first.memory);
    assert.equal(second.config.errors.length, 1);
    assert.equal(second.config.loaded, true);
    assert.deepEqual(writesOf(second), ["default/b ips=10.0.0.2 pool=p"], "allocates from the last good pools");
    assert.deepEqual(
      second.events.map((e) => `${e.object.kind}/${e.object.name} ${e.reason}`),
      ["IPAddressPool/p InvalidConfiguration"],
    );
    assert.equal(second.poolStatusWrites[0]?.status.conditions?.[0]?.status, "False");
    const third = decide(snapshot([...services, service("b")], bad), second.memory);
    assert.deepEqual(third.events, [], "reported once");
    assert.deepEqual(writesOf(third), []);
  });

  it("the memory handed in is never changed", () => {
    const pools = [pool("p", ["10.0.0.1-10.0.0.9"])];
    const memory = decide(snapshot([service("a")], pools), emptyMemory).memory;
    const before = structuredClone({ pending: [...memory.pending], backingOff: [...memory.backingOff] });
    decide(snapshot([service("a"), service("b")], pools, true), memory);
    writeFailed(memory, "default/a", memory.pending.get("default/a"), true);
    assert.deepEqual({ pending: [...memory.pending], backingOff: [...memory.backingOff] }, before);
    assert.equal(emptyMemory.pending.size, 0);
  });
});
