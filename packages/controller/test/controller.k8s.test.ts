// `bollard controller` as a child process against the real API server. Each test has its own
// namespace (pools and Lease live there) and its own loadBalancerClass, so controllers of other
// tests, running at the same time, never touch its Services.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { createInformer, createLogger, isStatus, kubeRequest, resources, typedResource } from "@bollard/core";
import {
  type ControllerProcess,
  type EventJSON,
  ips,
  kube,
  metricValue,
  startController,
  type ServiceJSON,
  suffix,
  type TestNamespace,
  testNamespace,
  waitFor,
} from "./k8s-helpers.ts";

const config = kube();

async function withController(prefix: string, body: (ns: TestNamespace, lbClass: string, controller: ControllerProcess) => Promise<void>) {
  const ns = await testNamespace(config, prefix);
  const lbClass = `bollard.test/${suffix()}`;
  const controller = startController({ namespace: ns.namespace, lbClass });
  try {
    await body(ns, lbClass, controller);
  } finally {
    assert.equal(await controller.stop(), 0, "the controller exits 0 on SIGTERM");
    await ns.delete();
  }
}

const allocated = (ns: TestNamespace, name: string) =>
  waitFor(`${ns.namespace}/${name} to get an address`, async () => {
    const service = await ns.getService(name);
    return ips(service).length > 0 ? service : undefined;
  });

const event = (ns: TestNamespace, object: string, reason: string, note?: RegExp) =>
  waitFor(`event ${reason} on ${object}`, async () =>
    (await ns.events()).find((e) => e.regarding.name === object && e.reason === reason && (note === undefined || note.test(e.note))),
  );

type ConfigurationStateJSON = {
  metadata: { labels?: Record<string, string> };
  status?: { result?: string; errorSummary?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
};

/** The controller's ConfigurationState (MetalLB v0.16), once it shows `result`. */
const configurationState = (ns: TestNamespace, result: "Valid" | "Invalid") =>
  waitFor(`ConfigurationState controller to be ${result}`, async () => {
    try {
      const state = await kubeRequest<ConfigurationStateJSON>(config, { path: `/apis/metallb.io/v1beta1/namespaces/${ns.namespace}/configurationstates/controller` });
      return state.status?.result === result ? state : undefined;
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  });

describe("bollard controller against the API server", () => {
  before(() => {
    assert.ok(process.env.BOLLARD_KUBECONFIG, "BOLLARD_KUBECONFIG must be set (run through test/run.ts)");
  });

  test("pool + Service → status address, pool annotation, IPAllocated Event, pool status", async () => {
    await withController("ctl-basic", async (ns, lbClass) => {
      await ns.createPool("p1", { addresses: ["192.168.67.240-192.168.67.250"] });
      await ns.createService("web", { lbClass, annotations: { "metallb.universe.tf/address-pool": "p1" } });
      // A Service of no class (or another) is not ours: it must stay untouched.
      await ns.createService("other-class", { lbClass: "example.com/other" });

      const web = await allocated(ns, "web");
      assert.deepEqual(ips(web), ["192.168.67.240"]);
      await waitFor("the ip-allocated-from-pool annotation", async () =>
        (await ns.getService("web")).metadata.annotations?.["metallb.io/ip-allocated-from-pool"] === "p1" ? true : undefined,
      );
      const allocatedEvent = await event(ns, "web", "IPAllocated");
      assert.equal(allocatedEvent.type, "Normal");
      assert.match(allocatedEvent.note, /192\.168\.67\.240/);
      const deprecated = await event(ns, "web", "DeprecatedAnnotation");
      assert.equal(deprecated.type, "Warning");
      assert.match(deprecated.note, /metallb\.universe\.tf\/address-pool is deprecated; use metallb\.io\/address-pool/);

      const pool = await waitFor("pool status", async () => {
        const p = await ns.getPool("p1");
        return p.status?.assignedIPv4 === 1 ? p : undefined;
      });
      assert.equal(pool.status?.availableIPv4, 10);
      assert.equal(pool.status?.assignedIPv6, 0);
      assert.equal(pool.status?.conditions?.find((c) => c.type === "ConfigValid")?.status, "True");

      const other = await ns.getService("other-class");
      assert.deepEqual(ips(other), []);
      assert.equal(other.metadata.annotations?.["metallb.io/ip-allocated-from-pool"], undefined);

      // Type changed away from LoadBalancer: the address is freed and the next Service gets it.
      await ns.patchService("web", { spec: { type: "ClusterIP", loadBalancerClass: null } });
      await waitFor("the annotation to go", async () =>
        (await ns.getService("web")).metadata.annotations?.["metallb.io/ip-allocated-from-pool"] === undefined ? true : undefined,
      );
      await ns.createService("next", { lbClass });
      assert.deepEqual(ips(await allocated(ns, "next")), ["192.168.67.240"]);
    });
  });

  test("a burst of Services created at once: each gets one distinct address, written once", async () => {
    await withController("ctl-burst", async (ns, lbClass, controller) => {
      await ns.createPool("p", { addresses: ["10.90.0.0/26"] });
      const names = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
      await Promise.all(names.map((name) => ns.createService(name, { lbClass })));
      const byName = await waitFor("40 Services with addresses and the pool annotation", async () => {
        const services = (await ns.listServices()).filter((s) => names.includes(s.metadata.name));
        const done = services.filter((s) => ips(s).length > 0 && s.metadata.annotations?.["metallb.io/ip-allocated-from-pool"] === "p");
        return done.length === names.length ? new Map(done.map((s) => [s.metadata.name, ips(s)])) : undefined;
      });
      const all = [...byName.values()].flat();
      assert.equal(all.length, 40, "one address each");
      assert.equal(new Set(all).size, 40, "no address given twice");
      assert.ok(all.every((ip) => /^10\.90\.0\.([0-9]|[1-5][0-9]|6[0-3])$/.test(ip)), "all from the pool");
      await waitFor("pool status to count 40", async () => ((await ns.getPool("p")).status?.assignedIPv4 === 40 ? true : undefined));
      // Events are written from a rate-limited queue, after the statuses: wait for every Service's.
      const events = await waitFor("an IPAllocated Event for each of the 40", async () => {
        const listed = await ns.events();
        return names.every((name) => listed.some((e) => e.regarding.name === name && e.reason === "IPAllocated")) ? listed : undefined;
      });
      for (const name of names) {
        const allocatedEvents = events.filter((e) => e.regarding.name === name && e.reason === "IPAllocated");
        assert.equal(allocatedEvents.length, 1, `${name}: one IPAllocated Event`);
        assert.equal((allocatedEvents[0] as EventJSON & { series?: unknown }).series, undefined, `${name}: allocated once, not repeatedly`);
      }
      assert.equal(events.filter((e) => e.reason === "ClearAssignment").length, 0);
      assert.equal(metricValue(await controller.metrics(), 'bollard_controller_allocations_total{pool="p"}'), 40);
    });
  });

  test("quick successive changes: a Service ends with the last address asked for, and no address is ever in two statuses", async () => {
    await withController("ctl-quick", async (ns, lbClass) => {
      await ns.createPool("p", { addresses: ["10.91.0.0/28"] });
      // Every status change in the namespace, in the API server's order.
      const held = new Map<string, string[]>();
      const doubles: string[] = [];
      const stop = new AbortController();
      const watch = createInformer({
        kubeConfig: config,
        resource: typedResource<ServiceJSON>(resources.services),
        namespace: ns.namespace,
        logger: createLogger({ name: "ctl-test", level: "silent" }),
        signal: stop.signal,
      });
      watch.onChange((event) => {
        if (event.object === undefined) return;
        held.set(event.object.metadata.name, event.type === "DELETED" ? [] : ips(event.object));
        const owners = new Map<string, string>();
        for (const [name, addresses] of held) {
          for (const ip of addresses) {
            const other = owners.get(ip);
            if (other !== undefined) doubles.push(`${ip}: ${other} and ${name}`);
            owners.set(ip, name);
          }
        }
      });
      try {
        await watch.synced;
        await ns.createService("mover", { lbClass });
        assert.deepEqual(ips(await allocated(ns, "mover")), ["10.91.0.0"]);
        for (const last of [3, 4, 5, 6, 7]) {
          await ns.patchService("mover", { metadata: { annotations: { "metallb.io/loadBalancerIPs": `10.91.0.${last}` } } });
        }
        await waitFor("mover at 10.91.0.7", async () => (ips(await ns.getService("mover"))[0] === "10.91.0.7" ? true : undefined));

        // Mover gives 10.91.0.7 up (no LoadBalancer any more) while a newcomer asks for it.
        await Promise.all([
          ns.patchService("mover", { spec: { type: "ClusterIP", loadBalancerClass: null } }),
          ns.createService("taker", { lbClass, annotations: { "metallb.io/loadBalancerIPs": "10.91.0.7" } }),
        ]);
        assert.deepEqual(ips(await allocated(ns, "taker")), ["10.91.0.7"]);
        await waitFor("the watch to see taker's address", async () => (held.get("taker")?.[0] === "10.91.0.7" ? true : undefined));
        assert.deepEqual(ips(await ns.getService("mover")), []);
        assert.deepEqual(doubles, []);
        assert.equal((await ns.getService("mover")).metadata.annotations?.["metallb.io/ip-allocated-from-pool"], undefined);
      } finally {
        stop.abort();
        watch.stop();
      }
    });
  });

  test("an address taken from one Service goes to another only once the API shows it gone, even while the freeing write fails", async () => {
    await withController("ctl-handover", async (ns, lbClass, controller) => {
      await ns.createPool("p", { addresses: ["10.92.0.0/28"] });
      await ns.createService("giver", { lbClass, annotations: { "metallb.io/loadBalancerIPs": "10.92.0.5" } });
      assert.deepEqual(ips(await allocated(ns, "giver")), ["10.92.0.5"]);

      // An admission policy refuses any status of giver without 10.92.0.5, so the controller's
      // write that moves giver to another address fails (and is retried) until the policy goes.
      const policy = `bollard-test-${ns.namespace}`;
      const admission = "/apis/admissionregistration.k8s.io/v1";
      await kubeRequest(config, {
        method: "POST",
        path: `${admission}/validatingadmissionpolicies`,
        body: {
          metadata: { name: policy },
          spec: {
            failurePolicy: "Fail",
            matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["services/status"] }] },
            validations: [
              {
                expression: `object.metadata.namespace != "${ns.namespace}" || object.metadata.name != "giver" || (has(object.status.loadBalancer.ingress) && object.status.loadBalancer.ingress.exists(i, has(i.ip) && i.ip == "10.92.0.5"))`,
                message: "giver keeps its address (test policy)",
              },
            ],
          },
        },
      });
      const binding = { metadata: { name: policy }, spec: { policyName: policy, validationActions: ["Deny"] } };
      await kubeRequest(config, { method: "POST", path: `${admission}/validatingadmissionpolicybindings`, body: binding });
      try {
        // The policy is in force once it refuses a status write that changes nothing else (a dry run).
        await waitFor("the admission policy to apply", async () => {
          try {
            await kubeRequest(config, {
              method: "PATCH",
              path: `/api/v1/namespaces/${ns.namespace}/services/giver/status`,
              query: { dryRun: "All" },
              contentType: "application/merge-patch+json",
              body: { status: { loadBalancer: { ingress: null } } },
            });
            return undefined;
          } catch (error) {
            return isStatus(error, 422) || isStatus(error, 403) ? true : undefined;
          }
        });

        await ns.patchService("giver", { metadata: { annotations: { "metallb.io/loadBalancerIPs": "10.92.0.6" } } });
        await ns.createService("taker", { lbClass, annotations: { "metallb.io/loadBalancerIPs": "10.92.0.5" } });
        const failures = () => controller.logs.filter((l) => l.msg === "write failed" && l.object === `${ns.namespace}/giver`).length;
        const seen = failures();
        // Each retry of giver's write follows a plan that also saw taker.
        await waitFor("two more failed writes of giver", async () => (failures() >= seen + 2 ? true : undefined));
        assert.deepEqual(ips(await ns.getService("giver")), ["10.92.0.5"]);
        assert.deepEqual(ips(await ns.getService("taker")), [], "taker waits while giver still shows the address");
      } finally {
        await kubeRequest(config, { method: "DELETE", path: `${admission}/validatingadmissionpolicybindings/${policy}` }).catch(() => {});
        await kubeRequest(config, { method: "DELETE", path: `${admission}/validatingadmissionpolicies/${policy}` }).catch(() => {});
      }
      assert.deepEqual(ips(await allocated(ns, "taker")), ["10.92.0.5"]);
      assert.deepEqual(ips(await ns.getService("giver")), ["10.92.0.6"]);
    });
  });

  test("sharing: same key and disjoint ports share an address; a port clash does not", async () => {
    await withController("ctl-share", async (ns, lbClass) => {
      await ns.createPool("p", { addresses: ["10.20.0.0/29"] });
      const key = { "metallb.io/allow-shared-ip": "dns" };
      await ns.createService("dns-tcp", { lbClass, annotations: key, ports: [{ port: 53, protocol: "TCP" }] });
      const first = ips(await allocated(ns, "dns-tcp"));
      await ns.createService("dns-udp", { lbClass, annotations: key, ports: [{ port: 53, protocol: "UDP" }] });
      await ns.createService("dns-tcp-2", { lbClass, annotations: key, ports: [{ port: 53, protocol: "TCP" }] });
      await ns.createService("unshared", { lbClass, ports: [{ port: 8080 }] });
      assert.deepEqual(ips(await allocated(ns, "dns-udp")), first);
      const second = ips(await allocated(ns, "dns-tcp-2"));
      const third = ips(await allocated(ns, "unshared"));
      assert.notDeepEqual(second, first);
      assert.notDeepEqual(third, first);
      assert.notDeepEqual(third, second);
      // Asking for the shared address without the key is refused with the reason.
      await ns.createService("intruder", { lbClass, annotations: { "metallb.io/loadBalancerIPs": first[0] as string }, ports: [{ port: 1 }] });
      const refused = await event(ns, "intruder", "AllocationFailed");
      assert.equal(refused.type, "Warning");
      assert.match(refused.note, /^SharingConflict: /);
      assert.deepEqual(ips(await ns.getService("intruder")), []);
    });
  });

  test("exhaustion → AllocationFailed Event; the Service gets an address once one frees up", async () => {
    await withController("ctl-full", async (ns, lbClass, controller) => {
      await ns.createPool("tiny", { addresses: ["10.30.0.0/31"] });
      await ns.createService("s1", { lbClass });
      await ns.createService("s2", { lbClass });
      const taken = [...ips(await allocated(ns, "s1")), ...ips(await allocated(ns, "s2"))].sort();
      assert.deepEqual(taken, ["10.30.0.0", "10.30.0.1"]);
      await ns.createService("s3", { lbClass });
      const failed = await event(ns, "s3", "AllocationFailed");
      assert.equal(failed.type, "Warning");
      assert.equal(failed.note, 'PoolExhausted: no free IPv4 address in pool "tiny"');
      assert.deepEqual(ips(await ns.getService("s3")), []);
      const metrics = await controller.metrics();
      assert.equal(metricValue(metrics, 'bollard_controller_allocation_failures_total{reason="PoolExhausted"}'), 1);
      assert.equal(metricValue(metrics, 'bollard_controller_addresses_in_use{pool="tiny",family="IPv4"}'), 2);

      const freed = ips(await ns.getService("s1"));
      await ns.deleteService("s1");
      assert.deepEqual(ips(await allocated(ns, "s3")), freed);
      assert.deepEqual(ips(await ns.getService("s2")), taken.filter((ip) => ip !== freed[0]));
    });
  });

  test("pool shrink → the address that left the pool is cleared and a new one allocated", async () => {
    await withController("ctl-shrink", async (ns, lbClass) => {
      await ns.createPool("p", { addresses: ["10.40.0.0/30"] });
      await ns.createService("a", { lbClass });
      assert.deepEqual(ips(await allocated(ns, "a")), ["10.40.0.0"]);
      await ns.createService("b", { lbClass });
      assert.deepEqual(ips(await allocated(ns, "b")), ["10.40.0.1"]);

      await ns.patchPool("p", { addresses: ["10.40.0.1-10.40.0.3"] });
      const cleared = await event(ns, "a", "ClearAssignment");
      assert.match(cleared.note, /10\.40\.0\.0 is in no pool/);
      await waitFor("a to move to 10.40.0.2", async () => (ips(await ns.getService("a"))[0] === "10.40.0.2" ? true : undefined));
      assert.deepEqual(ips(await ns.getService("b")), ["10.40.0.1"]);
      await waitFor("pool status to count 2", async () => ((await ns.getPool("p")).status?.availableIPv4 === 1 ? true : undefined));
    });
  });

  test("invalid pool configuration → nothing changes; Event, condition, ConfigurationState, metric and log report it", async () => {
    await withController("ctl-invalid", async (ns, lbClass, controller) => {
      await ns.createPool("a", { addresses: ["10.50.0.0/24"] });
      await ns.createService("web", { lbClass });
      const before = ips(await allocated(ns, "web"));
      assert.deepEqual(before, ["10.50.0.0"]);
      const valid = await configurationState(ns, "Valid");
      assert.equal(valid.metadata.labels?.["metallb.io/component-type"], "controller");
      assert.equal(valid.status?.errorSummary ?? "", "");
      assert.deepEqual(
        valid.status?.conditions?.map(({ type, status, reason }) => ({ type, status, reason })),
        [{ type: "poolReconcilerValid", status: "True", reason: "Reconciled" }],
      );

      // An overlapping pool, and pool a moved to addresses that would strand web's address.
      await ns.createPool("b", { addresses: ["10.50.0.128/25"] });
      await ns.patchPool("a", { addresses: ["10.60.0.0/24", "10.50.0.0/24"] });
      const overlap = /pool "a" spec\.addresses\[1\] "10\.50\.0\.0\/24" overlaps pool "b" spec\.addresses\[0\] "10\.50\.0\.128\/25"/;
      const warning = await event(ns, "b", "InvalidConfiguration", overlap);
      assert.equal(warning.type, "Warning");
      await event(ns, "a", "InvalidConfiguration", overlap);
      const condition = await waitFor("ConfigValid=False on pool b", async () =>
        (await ns.getPool("b")).status?.conditions?.find((c) => c.type === "ConfigValid" && c.status === "False"),
      );
      assert.equal(condition.reason, "InvalidConfiguration");
      assert.match(condition.message, /overlaps/);
      assert.equal(metricValue(await controller.metrics(), "bollard_controller_config_stale"), 1);
      const invalid = await configurationState(ns, "Invalid");
      assert.match(invalid.status?.errorSummary ?? "", overlap);
      const poolCondition = invalid.status?.conditions?.find((c) => c.type === "poolReconcilerValid");
      assert.equal(poolCondition?.status, "False");
      assert.equal(poolCondition?.reason, "ConfigError");
      assert.match(poolCondition?.message ?? "", overlap);
      await waitFor("a warning log line naming the field", async () =>
        controller.logs.some((l) => l.level === 40 && l.pool === "a" && l.field === "spec.addresses[1]" && String(l.msg).includes("keeping the last good configuration"))
          ? true
          : undefined,
      );

      // The last good configuration still serves: a new Service gets the next address of the
      // old pool a, and web keeps its address.
      await ns.createService("api", { lbClass });
      assert.deepEqual(ips(await allocated(ns, "api")), ["10.50.0.1"]);
      assert.deepEqual(ips(await ns.getService("web")), before);
      assert.equal((await ns.events()).filter((e) => e.reason === "ClearAssignment").length, 0);

      // Fixed: the new configuration applies (pool a now starts at 10.60.0.0, but web keeps its address).
      await ns.deletePool("b");
      await waitFor("config_stale to drop", async () => (metricValue(await controller.metrics(), "bollard_controller_config_stale") === 0 ? true : undefined));
      await waitFor("ConfigValid=True on pool a", async () =>
        (await ns.getPool("a")).status?.conditions?.find((c) => c.type === "ConfigValid" && c.status === "True"),
      );
      assert.equal((await configurationState(ns, "Valid")).status?.errorSummary ?? "", "");
      await ns.createService("late", { lbClass });
      assert.deepEqual(ips(await allocated(ns, "late")), ["10.60.0.0"]);
      assert.deepEqual(ips(await ns.getService("web")), before);
    });
  });
});
