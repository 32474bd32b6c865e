// The controller shell: informers feed snapshots, planAllocations decides, and the difference is
// written to Service statuses, annotations, Events and pool statuses. Only the Lease holder writes.
import { createHash } from "node:crypto";
import {
  type Backoff,
  type ConfigurationStateWriter,
  configurationReport,
  createBackoff,
  createConfigurationStateWriter,
  createEventRecorder,
  createInformer,
  type EventRecorder,
  type InvolvedObject,
  isStatus,
  type Labels,
  kubeRequest,
  type Logger,
  loadPools,
  type Pool,
  resourcePath,
  resources,
  runLeaderElection,
  typedResource,
  sleep,
  waitForSync,
} from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { planAllocations, type ServiceState } from "../allocator/plan.ts";
import type { PoolUsage, ServiceOutcome } from "../allocator/types.ts";
import {
  ANNOTATION_ALLOCATED_FROM_POOL,
  currentIPs,
  isHandledLoadBalancer,
  serviceKey,
  serviceRequest,
} from "../service/request.ts";
import { createControllerMetrics } from "./metrics.ts";
import { creationTimestamp, type NamespaceResource, type PoolCondition, type PoolResource, type PoolStatus, type ServiceResource } from "./resources.ts";
import { createWriter } from "./writer.ts";

const LEGACY_ALLOCATED_FROM_POOL = "metallb.universe.tf/ip-allocated-from-pool";
const MERGE_PATCH = "application/merge-patch+json";
const POOL_API = "metallb.io/v1beta1";
/** Writes in flight at once; below core's connection cap, so the Lease and Events always find a connection. */
const WRITE_CONCURRENCY = 16;
/**
 * Changes arriving within this long after the last plan ended (or within the last plan's own
 * duration, if longer) wait and are planned together in one pass: a burst costs a plan every few
 * milliseconds, not one per change, and planning never takes more than half the time. A change
 * after a quiet spell is planned at once.
 */
const COALESCE_MS = 5;
const NO_LABELS: Labels = {};

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
  const services = createInformer({ kubeConfig, resource: typedResource<ServiceResource>(resources.services), logger, signal });
  const namespaces = createInformer({ kubeConfig, resource: typedResource<NamespaceResource>(resources.namespaces), logger, signal });
  const pools = createInformer({ kubeConfig, resource: typedResource<PoolResource>(resources.ipAddressPools), namespace: configNamespace, logger, signal });

  let wake: (() => void) | undefined;
  let dirty = true;
  const markDirty = () => {
    dirty = true;
    wake?.();
  };
  /** The current term's test for a Service event that only echoes what our own writes returned. */
  let isOwnEcho: ((service: ServiceResource) => boolean) | undefined;
  /** A Service went away since the last pass, so the term's memory of it can go too. */
  let deleted = true;
  services.onChange((event) => {
    if (event.type === "MODIFIED" && event.object !== undefined && isOwnEcho?.(event.object)) return;
    if (event.type === "DELETED" || event.type === "RESYNC") deleted = true;
    markDirty();
  });
  for (const source of [namespaces, pools]) source.onChange(markDirty);

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
      // MetalLB v0.16's ConfigurationState `controller`: written by the leader, which is the replica that reads the pools.
      const configurationState = createConfigurationStateWriter({
        kubeConfig,
        namespace: configNamespace,
        name: "controller",
        component: "controller",
        logger,
        signal: leaderSignal,
      });
      const term = createTerm({ ...options, logger, metrics, events, services, namespaces, pools, signal: leaderSignal, markDirty, configurationState });
      isOwnEcho = term.isOwnEcho;
      const backoff = createBackoff({ initialMs: 200, maxMs: 30_000 });
      let lastPassEnd = Number.NEGATIVE_INFINITY;
      let lastPassMs = 0;
      dirty = true;
      deleted = true;
      while (!leaderSignal.aborted) {
        if (!dirty) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            leaderSignal.addEventListener("abort", () => resolve(), { once: true });
          });
          wake = undefined;
          continue;
        }
        const wait = lastPassEnd + Math.max(COALESCE_MS, lastPassMs) - performance.now();
        if (wait > 0) {
          await sleep(wait, leaderSignal);
          continue;
        }
        dirty = false;
        const deletions: boolean = deleted;
        deleted = false;
        const start = performance.now();
        try {
          term.reconcile(deletions);
          backoff.reset();
        } catch (error) {
          const delay = backoff.next();
          logger.error({ err: error, retryInMs: Math.round(delay) }, "reconcile failed; retrying");
          dirty = true;
          deleted ||= deletions;
          await sleep(delay, leaderSignal);
        }
        lastPassEnd = performance.now();
        lastPassMs = lastPassEnd - start;
      }
      isOwnEcho = undefined;
      await term.settled();
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
  /** Asks for another planning pass. */
  markDirty: () => void;
  metrics: ReturnType<typeof createControllerMetrics>;
  events: EventRecorder;
  services: { list(): ServiceResource[] };
  namespaces: { get(namespace: string | undefined, name: string): NamespaceResource | undefined };
  pools: { list(): PoolResource[] };
  configurationState: ConfigurationStateWriter;
};

/**
 * What a Service should look like after our write: its addresses (undefined: leave the status
 * alone) and the pool annotation (undefined: none, and no legacy one either).
 */
type Desired = { uid: string; ips: readonly string[] | undefined; pool: string | undefined };

/**
 * One leadership term. Its memory (last good configuration, writes in flight, problems already
 * reported) starts empty, so a replica that becomes leader again trusts only what the API shows.
 *
 * A pass plans every Service at once from the informers' snapshot and hands what differs to the
 * writer, which applies it with bounded concurrency while the next passes go on. A pass counts a
 * submitted write as done (the addresses it gives are held), and an address taken from one Service
 * is given to another only once the API shows it gone from the first.
 */
/** The controller's condition in its ConfigurationState, as MetalLB names it. */
const POOL_CONDITION = "poolReconcilerValid";

function createTerm(context: TermContext) {
  const { kubeConfig, lbClass, logger, metrics, events, signal, markDirty } = context;
  let lastGood: Pool[] | undefined;
  let reportedConfig: string | undefined;
  /** The copies our own writes returned, until the informer shows the same or newer. */
  const writtenServices = new Map<string, ServiceResource>();
  const writtenPools = new Map<string, PoolResource>();
  /** Writes submitted and not finished, by Service key. */
  const pending = new Map<string, Desired>();
  /** Objects whose last write failed: not written again until their backoff has passed (`due`). */
  const retries = new Map<string, { backoff: Backoff; due: boolean }>();
  const writer = createWriter({ concurrency: WRITE_CONCURRENCY, signal });
  /** The latest pass's pool statuses, written once the writer has nothing else to do. */
  let poolStatuses: { pools: PoolResource[]; usage: PoolUsage[]; problems: Map<string, string[]> } | undefined;
  let poolStatusesQueued = false;
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
  const servicePath = (service: ServiceResource, subresource: "" | "/status") =>
    resourcePath(resources.services, {
      namespace: service.metadata?.namespace,
      name: service.metadata?.name,
      ...(subresource === "/status" ? { subresource: "status" } : {}),
    });
  const poolKey = (pool: PoolResource) => `IPAddressPool ${pool.metadata?.name ?? ""}`;

  const newestService = (service: ServiceResource) => newest(writtenServices, serviceKey(service), service);

  /**
   * A Service's request, built once per version of the Service and of its namespace's labels (the
   * informers replace an object when it changes): a burst re-plans often, and most Services in it
   * are unchanged.
   */
  const requests = new WeakMap<ServiceResource, { labels: Labels; built: ReturnType<typeof serviceRequest> }>();
  function requestOf(service: ServiceResource): ReturnType<typeof serviceRequest> {
    const labels = context.namespaces.get(undefined, service.metadata?.namespace ?? "")?.metadata?.labels ?? NO_LABELS;
    const cached = requests.get(service);
    if (cached !== undefined && cached.labels === labels) return cached.built;
    const built = serviceRequest(service, labels);
    requests.set(service, { labels, built });
    return built;
  }

  function pendingFor(service: ServiceResource): Desired | undefined {
    const entry = pending.get(serviceKey(service));
    return entry !== undefined && entry.uid === service.metadata?.uid ? entry : undefined;
  }

  /** The addresses a Service holds: what our pending write gives it, else the newest copy's status. */
  function heldIPs(service: ServiceResource): string[] {
    const ips = pendingFor(service)?.ips;
    return ips !== undefined ? [...ips] : currentIPs(newestService(service));
  }

  /** True when the Service already is, or a pending write will make it, as desired. */
  function isCurrent(service: ServiceResource, desired: Desired): boolean {
    const entry = pendingFor(service);
    if (entry !== undefined) return sameOptionalList(entry.ips, desired.ips) && entry.pool === desired.pool;
    const current = newestService(service);
    const annotations = current.metadata?.annotations ?? {};
    return (
      sameOptionalList(currentIPs(current), desired.ips) &&
      annotations[ANNOTATION_ALLOCATED_FROM_POOL] === desired.pool &&
      !Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL)
    );
  }

  function retryLater(key: string): boolean {
    const retry = retries.get(key);
    return retry !== undefined && !retry.due;
  }

  function writeFailed(key: string, error: unknown): void {
    // Deleted, or replaced by an object of another uid: the informer will say so and we re-plan.
    if (isStatus(error, 404) || isStatus(error, 409)) return;
    logger.warn({ err: error, object: key }, "write failed");
    const retry = retries.get(key) ?? { backoff: createBackoff({ initialMs: 200, maxMs: 30_000 }), due: false };
    retry.due = false;
    retries.set(key, retry);
    void sleep(retry.backoff.next(), signal).then((elapsed) => {
      if (!elapsed) return;
      retry.due = true;
      markDirty();
    });
  }

  async function patchService(service: ServiceResource, subresource: "" | "/status", body: Record<string, unknown>, writeSignal: AbortSignal): Promise<ServiceResource> {
    const updated = await kubeRequest<ServiceResource>(kubeConfig, {
      method: "PATCH",
      path: servicePath(service, subresource),
      contentType: MERGE_PATCH,
      // The uid makes the patch fail rather than land on a Service recreated under the same name.
      body: { ...body, metadata: { ...(body.metadata as object | undefined), uid: service.metadata?.uid } },
      signal: writeSignal,
    });
    writtenServices.set(serviceKey(service), updated);
    return updated;
  }

  /**
   * Makes the Service as desired: status first, then the pool annotation. `onClear` says why
   * addresses are taken away, just before they are.
   */
  async function writeService(service: ServiceResource, desired: Desired, onClear: ((held: string[]) => void) | undefined, writeSignal: AbortSignal): Promise<void> {
    let current = newestService(service);
    const held = currentIPs(current);
    if (desired.ips !== undefined && !sameList(desired.ips, held)) {
      if (held.length > 0) onClear?.(held);
      const ips = desired.ips;
      current = await patchService(current, "/status", { status: { loadBalancer: { ingress: ips.length > 0 ? ips.map((ip) => ({ ip })) : null } } }, writeSignal);
      if (ips.length > 0) {
        logger.info({ service: serviceKey(service), ips, pool: desired.pool }, "address allocated");
        events.record(serviceRef(service), "Normal", "IPAllocated", `Assigned IP ${JSON.stringify(ips)} from pool "${desired.pool}"`);
        metrics.allocations.inc({ pool: desired.pool ?? "" });
      }
    }
    const annotations = current.metadata?.annotations ?? {};
    const legacy = Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL);
    if (annotations[ANNOTATION_ALLOCATED_FROM_POOL] === desired.pool && !legacy) return;
    await patchService(
      current,
      "",
      { metadata: { annotations: { [ANNOTATION_ALLOCATED_FROM_POOL]: desired.pool ?? null, ...(legacy ? { [LEGACY_ALLOCATED_FROM_POOL]: null } : {}) } } },
      writeSignal,
    );
  }

  /** Hands the write to the writer; until it is done, passes count the Service as desired. */
  function submitService(service: ServiceResource, desired: Desired, onClear?: (held: string[]) => void): void {
    const key = serviceKey(service);
    const entry: Desired = { ...desired };
    pending.set(key, entry);
    const frees = desired.ips !== undefined && currentIPs(newestService(service)).some((ip) => !desired.ips?.includes(ip));
    writer.submit(key, async (writeSignal) => {
      try {
        await writeService(service, desired, onClear, writeSignal);
        retries.delete(key);
      } catch (error) {
        if (!writeSignal.aborted) writeFailed(key, error);
      } finally {
        if (pending.get(key) === entry) pending.delete(key);
        // Whoever waits for a freed address is planned again now (the write's own watch event
        // is an echo and plans nothing).
        if (frees) markDirty();
      }
    });
  }

  /**
   * Notes, in `leaving`, the addresses the API still shows on a Service although we are taking
   * them away (`keeps` undefined: we leave its addresses alone).
   */
  function noteLeaving(leaving: Map<string, string>, service: ServiceResource, keeps: readonly string[] | undefined): void {
    if (keeps === undefined) return;
    for (const ip of currentIPs(newestService(service))) if (!keeps.includes(ip)) leaving.set(ip, serviceKey(service));
  }

  /** `leaving`: address → the Service it is being taken from; nobody else gets it before that is done. */
  function applyOutcome(service: ServiceResource, outcome: ServiceOutcome, leaving: Map<string, string>): void {
    const ref = serviceRef(service);
    const uid = service.metadata?.uid ?? outcome.key;
    if (outcome.failure !== undefined) {
      const message = `${outcome.failure.reason}: ${outcome.failure.message}`;
      if (reportedFailures.get(uid) !== message) {
        reportedFailures.set(uid, message);
        logger.warn({ service: outcome.key, reason: outcome.failure.reason }, outcome.failure.message);
        events.record(ref, "Warning", "AllocationFailed", message);
        metrics.failures.inc({ reason: outcome.failure.reason });
      }
    } else {
      reportedFailures.delete(uid);
    }
    const desired: Desired = { uid: service.metadata?.uid ?? "", ips: outcome.ips, pool: outcome.ips.length > 0 ? outcome.pool : undefined };
    if (isCurrent(service, desired) || retryLater(outcome.key)) return;
    if (outcome.ips.some((ip) => (leaving.get(ip) ?? outcome.key) !== outcome.key)) return;
    const reason = outcome.cleared;
    submitService(
      service,
      desired,
      reason === undefined
        ? undefined
        : (held) => {
            logger.info({ service: outcome.key, ips: held, reason }, "clearing assignment");
            events.record(ref, "Normal", "ClearAssignment", `cleared ${held.join(",")}: ${reason}; allocating anew`);
          },
    );
  }

  /** A Service we gave addresses to that is no longer ours: drop our annotation, and free its addresses if it is no LoadBalancer. */
  function releaseService(service: ServiceResource, leaving: Map<string, string>): void {
    const key = serviceKey(service);
    const annotations = newestService(service).metadata?.annotations ?? {};
    const ours = Object.hasOwn(annotations, ANNOTATION_ALLOCATED_FROM_POOL) || Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL);
    if (!ours && pendingFor(service) === undefined) return;
    const clear = service.spec?.type !== "LoadBalancer" && heldIPs(service).length > 0;
    const desired: Desired = { uid: service.metadata?.uid ?? "", ips: clear ? [] : undefined, pool: undefined };
    noteLeaving(leaving, service, desired.ips);
    if (isCurrent(service, desired) || retryLater(key)) return;
    submitService(service, desired, (held) => {
      logger.info({ service: key, ips: held }, "not a LoadBalancer any more; clearing assignment");
      events.record(serviceRef(service), "Normal", "ClearAssignment", `cleared ${held.join(",")}: not a LoadBalancer Service any more`);
    });
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

  /** The status a pool should have, or undefined when it has it already. */
  function desiredPoolStatus(pool: PoolResource, usage: PoolUsage | undefined, problems: string[]): PoolStatus | undefined {
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
    return unchanged ? undefined : desired;
  }

  /**
   * Pool statuses report the plan, so they are written after the Services' writes: once the writer
   * has nothing else to do, from the latest pass.
   */
  function queuePoolStatuses(): void {
    if (poolStatusesQueued) return;
    poolStatusesQueued = true;
    void writer.idle().then(() => {
      poolStatusesQueued = false;
      if (signal.aborted || poolStatuses === undefined) return;
      const { pools, usage, problems } = poolStatuses;
      for (const seen of pools) {
        const key = poolKey(seen);
        const pool = newest(writtenPools, key, seen);
        const name = pool.metadata?.name ?? "";
        const status = desiredPoolStatus(pool, usage.find((u) => u.pool === name), problems.get(name) ?? []);
        if (status === undefined || retryLater(key)) continue;
        const path = resourcePath(resources.ipAddressPools, { namespace: pool.metadata?.namespace, name, subresource: "status" });
        writer.submit(key, async (writeSignal) => {
          try {
            const updated = await kubeRequest<PoolResource>(kubeConfig, {
              method: "PATCH",
              path,
              contentType: MERGE_PATCH,
              body: { metadata: { uid: pool.metadata?.uid }, status },
              signal: writeSignal,
            });
            writtenPools.set(key, updated);
            retries.delete(key);
          } catch (error) {
            if (!writeSignal.aborted) writeFailed(key, error);
          }
        });
      }
    });
  }

  return {
    /**
     * One planning pass: decides, and submits what differs; never waits for a write. `deletions`:
     * Services may have gone since the last pass (their memory is dropped; a burst of creations
     * need not walk it).
     */
    reconcile(deletions: boolean): void {
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
      context.configurationState.report(configurationReport(POOL_CONDITION, "errors" in config ? config.errors.map((error) => error.message) : []));
      metrics.configLoaded.set(lastGood !== undefined ? 1 : 0);

      const all = context.services.list();
      const leaving = new Map<string, string>();
      for (const service of all) {
        if (!isHandledLoadBalancer(service, lbClass)) releaseService(service, leaving);
      }
      let usage: PoolUsage[] = [];
      if (lastGood !== undefined) {
        const handled = all
          .filter((service) => isHandledLoadBalancer(service, lbClass))
          .map((service) => ({ service, created: creationTimestamp(service), key: serviceKey(service) }))
          .sort((a, b) => compare(a.created, b.created) || compare(a.key, b.key))
          .map(({ service }) => service);
        const deprecated = new Map<string, string[]>();
        const states: ServiceState[] = handled.map((service) => {
          const built = requestOf(service);
          deprecated.set(built.request.key, built.deprecated);
          return { request: built.request, currentIPs: heldIPs(service) };
        });
        const plan = planAllocations(lastGood, states);
        usage = plan.usage;
        for (const [i, service] of handled.entries()) noteLeaving(leaving, service, (plan.outcomes[i] as ServiceOutcome).ips);
        for (const [i, service] of handled.entries()) {
          const outcome = plan.outcomes[i] as ServiceOutcome;
          const uid = service.metadata?.uid ?? outcome.key;
          for (const annotation of deprecated.get(outcome.key) ?? []) {
            if (reportedDeprecations.has(`${uid}/${annotation}`)) continue;
            reportedDeprecations.add(`${uid}/${annotation}`);
            const replacement = `metallb.io/${annotation.slice(annotation.indexOf("/") + 1)}`;
            events.record(serviceRef(service), "Warning", "DeprecatedAnnotation", `${annotation} is deprecated; use ${replacement}`);
          }
          applyOutcome(service, outcome, leaving);
        }
      }
      poolStatuses = { pools: poolObjects, usage, problems };
      queuePoolStatuses();
      metrics.setUsage(usage);
      if (deletions) forgetDeleted(all);
    },
    /** True when the Service, as seen, is our own write's result or older than it: nothing to plan. */
    isOwnEcho(service: ServiceResource): boolean {
      const mine = writtenServices.get(serviceKey(service));
      if (mine === undefined || mine.metadata?.uid !== service.metadata?.uid) return false;
      const ours = resourceVersionOf(mine);
      const seen = resourceVersionOf(service);
      return ours !== undefined && seen !== undefined && seen <= ours;
    },
    /** Resolves once the writes of this term are over (they abort with the term's signal). */
    settled: () => writer.idle(),
  };

  function forgetDeleted(all: ServiceResource[]): void {
    const uids = new Set(all.map((service) => service.metadata?.uid ?? ""));
    const keys = new Set(all.map(serviceKey));
    for (const key of writtenServices.keys()) if (!keys.has(key)) writtenServices.delete(key);
    for (const key of retries.keys()) if (!key.startsWith("IPAddressPool ") && !keys.has(key)) retries.delete(key);
    for (const uid of reportedFailures.keys()) if (!uids.has(uid)) reportedFailures.delete(uid);
    for (const entry of reportedDeprecations) if (!uids.has(entry.slice(0, entry.indexOf("/")))) reportedDeprecations.delete(entry);
  }
}

/**
 * The newer of what the informer shows and what our own last write returned. resourceVersions are
 * opaque to clients in principle; every API server stores etcd revisions in them, and comparing
 * them is the only way to tell our own write from an older cached copy.
 */
function newest<T extends { metadata?: { uid?: string; resourceVersion?: string } }>(written: Map<string, T>, key: string, seen: T): T {
  const mine = written.get(key);
  if (mine === undefined) return seen;
  if (mine.metadata?.uid === seen.metadata?.uid) {
    const ours = resourceVersionOf(mine);
    const theirs = resourceVersionOf(seen);
    if (ours !== undefined && theirs !== undefined && ours > theirs) return mine;
  }
  written.delete(key);
  return seen;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `desired` undefined means "whatever it is". */
function sameOptionalList(current: readonly string[] | undefined, desired: readonly string[] | undefined): boolean {
  return desired === undefined || (current !== undefined && sameList(current, desired));
}

function resourceVersionOf(object: { metadata?: { resourceVersion?: string } }): bigint | undefined {
  const version = object.metadata?.resourceVersion;
  return version !== undefined && /^[0-9]+$/.test(version) ? BigInt(version) : undefined;
}

/** Pool sizes beyond 2^53 (an IPv6 /64 is 2^64) are reported as 2^53 - 1, the largest exact JSON integer. */
function toJSONInteger(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
