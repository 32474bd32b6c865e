// The controller shell: informers feed snapshots, planAllocations decides, and the difference is
// written to Service statuses, annotations, Events and pool statuses. Only the Lease holder writes.
import { createHash } from "node:crypto";
import {
  createBackoff,
  createEventRecorder,
  createInformer,
  type EventRecorder,
  type InvolvedObject,
  isStatus,
  kubeRequest,
  type Logger,
  runLeaderElection,
  sleep,
  waitForSync,
} from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { planAllocations, type ServiceState } from "../allocator/plan.ts";
import type { PoolUsage, ServiceOutcome } from "../allocator/types.ts";
import { loadPools, type Pool } from "../config/pools.ts";
import {
  ANNOTATION_ALLOCATED_FROM_POOL,
  currentIPs,
  isHandledLoadBalancer,
  serviceKey,
  serviceRequest,
} from "../service/request.ts";
import { createControllerMetrics } from "./metrics.ts";
import { creationTimestamp, type NamespaceResource, type PoolCondition, type PoolResource, type PoolStatus, type ServiceResource } from "./resources.ts";

const LEGACY_ALLOCATED_FROM_POOL = "metallb.universe.tf/ip-allocated-from-pool";
const MERGE_PATCH = "application/merge-patch+json";
const POOL_API = "metallb.io/v1beta1";

export type ControllerOptions = {
  kubeConfig: KubeConfig;
  /** Where IPAddressPools are read and the Lease lives. */
  configNamespace: string;
  /** Handle only Services of this spec.loadBalancerClass; undefined: only Services without one. */
  lbClass: string | undefined;
  /** Unique per replica (the pod name in a cluster). */
  identity: string;
  logger: Logger;
  registry: Registry;
  signal: AbortSignal;
};

export type Controller = {
  /** Informers have listed everything once. */
  isReady(): boolean;
  isLeader(): boolean;
  /** Resolves when stopped by the signal, after the Lease is released. */
  done: Promise<void>;
};

/** The Lease name: one per load-balancer class, so controllers of different classes do not compete. */
export function leaseName(lbClass: string | undefined): string {
  if (lbClass === undefined) return "bollard-controller";
  return `bollard-controller-${createHash("sha256").update(lbClass).digest("hex").slice(0, 12)}`;
}

export function runController(options: ControllerOptions): Controller {
  const { kubeConfig, configNamespace, lbClass, signal } = options;
  const logger = options.logger.child({ component: "controller" });
  const metrics = createControllerMetrics(options.registry);
  const events = createEventRecorder({ kubeConfig, component: "bollard.io/controller", logger });
  const informer = <T extends object>(path: string) =>
    createInformer<T & { metadata?: { name?: string; namespace?: string } }>({ kubeConfig, path, logger, signal });
  const services = informer<ServiceResource>("/api/v1/services");
  const namespaces = informer<NamespaceResource>("/api/v1/namespaces");
  const pools = informer<PoolResource>(`/apis/${POOL_API}/namespaces/${encodeURIComponent(configNamespace)}/ipaddresspools`);

  let wake: (() => void) | undefined;
  let dirty = true;
  const markDirty = () => {
    dirty = true;
    wake?.();
  };
  for (const source of [services, namespaces, pools]) source.onChange(markDirty);

  const election = runLeaderElection({
    kubeConfig,
    namespace: configNamespace,
    name: leaseName(lbClass),
    identity: options.identity,
    logger,
    signal,
    onStartedLeading: async (leaderSignal) => {
      metrics.leader.set(1);
      try {
        await waitForSync(services, namespaces, pools);
      } catch {
        return; // stopped before the first list
      }
      const term = createTerm({ ...options, logger, metrics, events, services, namespaces, pools });
      const backoff = createBackoff({ initialMs: 200, maxMs: 30_000 });
      dirty = true;
      while (!leaderSignal.aborted) {
        if (!dirty) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            leaderSignal.addEventListener("abort", () => resolve(), { once: true });
          });
          wake = undefined;
          continue;
        }
        dirty = false;
        try {
          await term.reconcile(leaderSignal);
          backoff.reset();
        } catch (error) {
          if (leaderSignal.aborted) break;
          const delay = backoff.next();
          logger.warn({ err: error, retryInMs: Math.round(delay) }, "reconcile failed; retrying");
          dirty = true;
          await sleep(delay, leaderSignal);
        }
      }
      await events.flush();
    },
    onStoppedLeading: () => metrics.leader.set(0),
  });

  return {
    isReady: () => services.hasSynced() && namespaces.hasSynced() && pools.hasSynced(),
    isLeader: () => election.isLeader(),
    done: election.done.then(async () => {
      for (const source of [services, namespaces, pools]) source.stop();
      await events.flush();
    }),
  };
}

type TermContext = ControllerOptions & {
  metrics: ReturnType<typeof createControllerMetrics>;
  events: EventRecorder;
  services: { list(): ServiceResource[] };
  namespaces: { get(namespace: string | undefined, name: string): NamespaceResource | undefined };
  pools: { list(): PoolResource[] };
};

/** A write that has not shown up in the informer yet: what we wrote, and the version it made. */
type Written = { uid: string; resourceVersion: bigint; ips: string[] };

/**
 * One leadership term. Its memory (last good configuration, writes in flight, problems already
 * reported) starts empty, so a replica that becomes leader again trusts only what the API shows.
 */
function createTerm(context: TermContext) {
  const { kubeConfig, lbClass, logger, metrics, events } = context;
  let lastGood: Pool[] | undefined;
  let reportedConfig: string | undefined;
  const written = new Map<string, Written>();
  const reportedFailures = new Map<string, string>();
  const reportedDeprecations = new Set<string>();

  const serviceRef = (service: ServiceResource): InvolvedObject => ({
    kind: "Service",
    apiVersion: "v1",
    namespace: service.metadata?.namespace,
    name: service.metadata?.name ?? "",
    uid: service.metadata?.uid,
  });
  const poolRef = (pool: PoolResource): InvolvedObject => ({
    kind: "IPAddressPool",
    apiVersion: POOL_API,
    namespace: pool.metadata?.namespace,
    name: pool.metadata?.name ?? "",
    uid: pool.metadata?.uid,
  });
  const servicePath = (service: ServiceResource) =>
    `/api/v1/namespaces/${encodeURIComponent(service.metadata?.namespace ?? "")}/services/${encodeURIComponent(service.metadata?.name ?? "")}`;

  /** The addresses a Service holds: its status, unless our own newer write has not arrived yet. */
  function heldIPs(service: ServiceResource): string[] {
    const key = serviceKey(service);
    const entry = written.get(key);
    if (entry !== undefined && entry.uid === service.metadata?.uid) {
      const seen = resourceVersionOf(service);
      if (seen !== undefined && seen < entry.resourceVersion) return entry.ips;
    }
    written.delete(key);
    return currentIPs(service);
  }

  async function writeStatus(service: ServiceResource, ips: string[], signal: AbortSignal): Promise<void> {
    const body = {
      // The uid makes the patch fail rather than land on a Service recreated under the same name.
      metadata: { uid: service.metadata?.uid },
      status: { loadBalancer: { ingress: ips.length > 0 ? ips.map((ip) => ({ ip })) : null } },
    };
    const updated = await kubeRequest<ServiceResource>(kubeConfig, {
      method: "PATCH",
      path: `${servicePath(service)}/status`,
      contentType: MERGE_PATCH,
      body,
      signal,
    });
    const version = resourceVersionOf(updated);
    if (version !== undefined) written.set(serviceKey(service), { uid: service.metadata?.uid ?? "", resourceVersion: version, ips });
  }

  async function writePoolAnnotation(service: ServiceResource, pool: string | undefined, signal: AbortSignal): Promise<void> {
    const annotations = service.metadata?.annotations ?? {};
    const legacy = Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL);
    if (annotations[ANNOTATION_ALLOCATED_FROM_POOL] === pool && !legacy) return;
    await kubeRequest(kubeConfig, {
      method: "PATCH",
      path: servicePath(service),
      contentType: MERGE_PATCH,
      body: {
        metadata: {
          uid: service.metadata?.uid,
          annotations: { [ANNOTATION_ALLOCATED_FROM_POOL]: pool ?? null, ...(legacy ? { [LEGACY_ALLOCATED_FROM_POOL]: null } : {}) },
        },
      },
      signal,
    });
  }

  async function applyOutcome(service: ServiceResource, outcome: ServiceOutcome, held: string[], signal: AbortSignal): Promise<void> {
    const ref = serviceRef(service);
    const log = logger.child({ service: outcome.key });
    if (outcome.cleared !== undefined) {
      log.info({ ips: held, reason: outcome.cleared }, "clearing assignment");
      events.record(ref, "Normal", "ClearAssignment", `cleared ${held.join(",")}: ${outcome.cleared}; allocating anew`);
    }
    if (!sameList(outcome.ips, held)) {
      await writeStatus(service, outcome.ips, signal);
      if (outcome.ips.length > 0) {
        log.info({ ips: outcome.ips, pool: outcome.pool }, "address allocated");
        events.record(ref, "Normal", "IPAllocated", `Assigned IP ${JSON.stringify(outcome.ips)} from pool "${outcome.pool}"`);
        metrics.allocations.inc({ pool: outcome.pool ?? "" });
      }
    }
    await writePoolAnnotation(service, outcome.ips.length > 0 ? outcome.pool : undefined, signal);
    const uid = service.metadata?.uid ?? outcome.key;
    if (outcome.failure !== undefined) {
      const message = `${outcome.failure.reason}: ${outcome.failure.message}`;
      if (reportedFailures.get(uid) !== message) {
        reportedFailures.set(uid, message);
        log.warn({ reason: outcome.failure.reason }, outcome.failure.message);
        events.record(ref, "Warning", "AllocationFailed", message);
        metrics.failures.inc({ reason: outcome.failure.reason });
      }
    } else {
      reportedFailures.delete(uid);
    }
  }

  /** A Service we gave addresses to that is no longer ours (type changed): free them. */
  async function releaseService(service: ServiceResource, signal: AbortSignal): Promise<void> {
    const held = heldIPs(service);
    if (service.spec?.type !== "LoadBalancer" && held.length > 0) {
      logger.info({ service: serviceKey(service), ips: held }, "not a LoadBalancer any more; clearing assignment");
      events.record(serviceRef(service), "Normal", "ClearAssignment", `cleared ${held.join(",")}: not a LoadBalancer Service any more`);
      await writeStatus(service, [], signal);
    }
    await writePoolAnnotation(service, undefined, signal);
  }

  function reportConfig(errors: { pools: string[]; message: string; field: string; pool: string }[], poolObjects: PoolResource[]): void {
    const summary = errors.map((error) => error.message).join("\n");
    if (summary === reportedConfig) return;
    reportedConfig = summary;
    if (errors.length === 0) {
      logger.info({ pools: lastGood?.length ?? 0 }, "pool configuration loaded");
      return;
    }
    const keeping = lastGood !== undefined ? "keeping the last good configuration" : "no good configuration yet: allocating nothing";
    for (const error of errors) logger.warn({ pool: error.pool, field: error.field }, `invalid IPAddressPool configuration, ${keeping}: ${error.message}`);
    for (const pool of poolObjects) {
      const mine = errors.filter((error) => error.pools.includes(pool.metadata?.name ?? ""));
      if (mine.length === 0) continue;
      events.record(poolRef(pool), "Warning", "InvalidConfiguration", `${mine.map((error) => error.message).join("; ")}; ${keeping}`);
    }
  }

  async function writePoolStatus(pool: PoolResource, usage: PoolUsage | undefined, problems: string[], signal: AbortSignal): Promise<void> {
    const current = pool.status ?? {};
    const valid = problems.length === 0;
    const previous = current.conditions?.find((condition) => condition.type === "ConfigValid");
    const status: PoolCondition["status"] = valid ? "True" : "False";
    const condition: PoolCondition = {
      type: "ConfigValid",
      status,
      reason: valid ? "Valid" : "InvalidConfiguration",
      message: valid ? "the pool is valid" : problems.join("; "),
      observedGeneration: pool.metadata?.generation,
      lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    const desired: PoolStatus = {
      ...(usage !== undefined
        ? {
            assignedIPv4: usage.assignedIPv4,
            assignedIPv6: usage.assignedIPv6,
            availableIPv4: toJSONInteger(usage.availableIPv4),
            availableIPv6: toJSONInteger(usage.availableIPv6),
          }
        : {}),
      conditions: [...(current.conditions ?? []).filter((c) => c.type !== "ConfigValid"), condition],
    };
    const unchanged =
      (usage === undefined ||
        (current.assignedIPv4 === desired.assignedIPv4 &&
          current.assignedIPv6 === desired.assignedIPv6 &&
          current.availableIPv4 === desired.availableIPv4 &&
          current.availableIPv6 === desired.availableIPv6)) &&
      previous !== undefined &&
      previous.status === condition.status &&
      previous.reason === condition.reason &&
      previous.message === condition.message &&
      previous.observedGeneration === condition.observedGeneration;
    if (unchanged) return;
    const path = `/apis/${POOL_API}/namespaces/${encodeURIComponent(pool.metadata?.namespace ?? "")}/ipaddresspools/${encodeURIComponent(pool.metadata?.name ?? "")}/status`;
    await kubeRequest(kubeConfig, { method: "PATCH", path, contentType: MERGE_PATCH, body: { metadata: { uid: pool.metadata?.uid }, status: desired }, signal });
  }

  return {
    async reconcile(signal: AbortSignal): Promise<void> {
      const poolObjects = context.pools.list().sort((a, b) => compare(a.metadata?.name ?? "", b.metadata?.name ?? ""));
      const config = loadPools(poolObjects);
      const problems = new Map<string, string[]>();
      if ("errors" in config) {
        for (const error of config.errors) {
          for (const name of error.pools) problems.set(name, [...(problems.get(name) ?? []), error.message]);
        }
        reportConfig(config.errors, poolObjects);
        metrics.configStale.set(1);
      } else {
        lastGood = config.pools;
        reportConfig([], poolObjects);
        metrics.configStale.set(0);
      }
      metrics.configLoaded.set(lastGood !== undefined ? 1 : 0);

      const failures: unknown[] = [];
      const attempt = async (what: string, write: () => Promise<void>) => {
        try {
          await write();
        } catch (error) {
          if (signal.aborted) throw error;
          if (isStatus(error, 404)) return; // deleted meanwhile; the informer will say so
          logger.warn({ err: error, object: what }, "write failed");
          failures.push(error);
        }
      };

      const all = context.services.list();
      let usage: PoolUsage[] = [];
      if (lastGood !== undefined) {
        const handled = all
          .filter((service) => isHandledLoadBalancer(service, lbClass))
          .sort((a, b) => compare(creationTimestamp(a), creationTimestamp(b)) || compare(serviceKey(a), serviceKey(b)));
        const deprecated = new Map<string, string[]>();
        const states: ServiceState[] = handled.map((service) => {
          const namespace = service.metadata?.namespace ?? "";
          const labels = context.namespaces.get(undefined, namespace)?.metadata?.labels ?? {};
          const built = serviceRequest(service, labels);
          deprecated.set(built.request.key, built.deprecated);
          return { request: built.request, currentIPs: heldIPs(service) };
        });
        const plan = planAllocations(lastGood, states);
        usage = plan.usage;
        for (const [i, service] of handled.entries()) {
          const outcome = plan.outcomes[i] as ServiceOutcome;
          const uid = service.metadata?.uid ?? outcome.key;
          for (const annotation of deprecated.get(outcome.key) ?? []) {
            if (reportedDeprecations.has(`${uid}/${annotation}`)) continue;
            reportedDeprecations.add(`${uid}/${annotation}`);
            const replacement = `metallb.io/${annotation.slice(annotation.indexOf("/") + 1)}`;
            events.record(serviceRef(service), "Warning", "DeprecatedAnnotation", `${annotation} is deprecated; use ${replacement}`);
          }
          await attempt(outcome.key, () => applyOutcome(service, outcome, states[i]?.currentIPs as string[], signal));
        }
      }
      for (const service of all) {
        if (isHandledLoadBalancer(service, lbClass)) continue;
        const annotations = service.metadata?.annotations ?? {};
        if (!Object.hasOwn(annotations, ANNOTATION_ALLOCATED_FROM_POOL) && !Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL)) continue;
        await attempt(serviceKey(service), () => releaseService(service, signal));
      }
      for (const pool of poolObjects) {
        const name = pool.metadata?.name ?? "";
        const poolUsage = usage.find((u) => u.pool === name);
        await attempt(`IPAddressPool ${name}`, () => writePoolStatus(pool, poolUsage, problems.get(name) ?? [], signal));
      }
      metrics.setUsage(usage);
      forgetDeleted(all);
      if (failures.length > 0) throw new AggregateError(failures, `${failures.length} write(s) failed`);
    },
  };

  function forgetDeleted(all: ServiceResource[]): void {
    const uids = new Set(all.map((service) => service.metadata?.uid ?? ""));
    const keys = new Set(all.map(serviceKey));
    for (const key of written.keys()) if (!keys.has(key)) written.delete(key);
    for (const uid of reportedFailures.keys()) if (!uids.has(uid)) reportedFailures.delete(uid);
    for (const entry of reportedDeprecations) if (!uids.has(entry.slice(0, entry.indexOf("/")))) reportedDeprecations.delete(entry);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * resourceVersions are opaque to clients in principle; every API server stores etcd revisions in
 * them, and comparing them is the only way to tell our own write from an older cached copy.
 */
function resourceVersionOf(object: { metadata?: { resourceVersion?: string } }): bigint | undefined {
  const version = object.metadata?.resourceVersion;
  return version !== undefined && /^[0-9]+$/.test(version) ? BigInt(version) : undefined;
}

/** Pool sizes beyond 2^53 (an IPv6 /64 is 2^64) are reported as 2^53 - 1, the largest exact JSON integer. */
function toJSONInteger(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
