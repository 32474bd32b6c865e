// The controller shell: informers feed snapshots, decide() plans, and the executor here applies the
// result — Service statuses and annotations, pool statuses, Events, metrics — and reports each
// write's outcome back into the term's memory. Only the Lease holder writes.
import { createHash } from "node:crypto";
import {
  type ConfigurationStateWriter,
  configurationReport,
  createConfigurationStateWriter,
  createEventRecorder,
  createInformer,
  createWorkQueue,
  type EventRecorder,
  type Informer,
  isStatus,
  kubeRequest,
  type Logger,
  resourcePath,
  resources,
  runLeaderElection,
  typedResource,
  sleep,
  waitForSync,
  type WorkQueue,
  stripManagedFields,
} from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { ANNOTATION_ALLOCATED_FROM_POOL, serviceKey } from "../service/request.ts";
import {
  backoffEnded,
  decide,
  emptyMemory,
  LEGACY_ALLOCATED_FROM_POOL,
  type Memory,
  observePool,
  observeService,
  type PendingWrite,
  type PoolStatusWrite,
  poolKey,
  poolWriteLanded,
  poolWriteSubmitted,
  type ServiceWrite,
  serviceWriteLanded,
  writeFailed,
} from "./decide.ts";
import { createControllerMetrics } from "./metrics.ts";
import type { NamespaceResource, PoolResource, ServiceResource } from "./resources.ts";

const MERGE_PATCH = "application/merge-patch+json";
/** Writes in flight at once; below core's connection cap, so the Lease and Events always find a connection. */
const WRITE_CONCURRENCY = 16;
/**
 * After a pass, changes wait this long (or the pass's own duration, if longer) and are planned
 * together in one pass: a burst costs a plan every few milliseconds, not one per change, and
 * planning never takes more than half the time. A change after a quiet spell is planned at once.
 */
const COALESCE_MS = 5;

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
  // managedFields are read by nobody here and are much of each object's metadata.
  const services = createInformer({ kubeConfig, resource: typedResource<ServiceResource>(resources.services), logger, signal, transform: stripManagedFields });
  const namespaces = createInformer({ kubeConfig, resource: typedResource<NamespaceResource>(resources.namespaces), logger, signal, transform: stripManagedFields });
  const pools = createInformer({ kubeConfig, resource: typedResource<PoolResource>(resources.ipAddressPools), namespace: configNamespace, logger, signal });

  /** The current term's planning passes: one at a time, coalesced, retried with backoff. */
  let passes: WorkQueue<"pass"> | undefined;
  const markDirty = () => passes?.add("pass");
  /** The current leadership term, which is told every change so it can recognise its own writes. */
  let term: Term | undefined;
  /** A Service went away since the last pass, so the term's memory of it can go too. */
  let deleted = true;
  services.onChange((event) => {
    if (term?.observeService(event) === true) return; // only our own write coming back
    if (event.type === "DELETED" || event.type === "RESYNC") deleted = true;
    markDirty();
  });
  pools.onChange((event) => {
    term?.observePool(event);
    markDirty();
  });
  namespaces.onChange(markDirty);

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
      const current = createTerm({ ...options, logger, metrics, events, services, namespaces, pools, signal: leaderSignal, markDirty, configurationState });
      term = current;
      deleted = true;
      const termPasses = createWorkQueue<"pass">({
        signal: leaderSignal,
        backoff: { initialMs: 200, maxMs: 30_000 },
        onError: (_key, error, retryInMs) => logger.error({ err: error, retryInMs: Math.round(retryInMs) }, "reconcile failed; retrying"),
        work: async () => {
          const deletions = deleted;
          deleted = false;
          const start = performance.now();
          try {
            current.reconcile(deletions);
          } catch (error) {
            deleted ||= deletions;
            throw error;
          }
          // Changes arriving meanwhile are planned together, in one pass after this pause.
          await sleep(Math.max(COALESCE_MS, performance.now() - start), leaderSignal);
        },
      });
      passes = termPasses;
      markDirty();
      await new Promise<void>((resolve) => {
        if (leaderSignal.aborted) resolve();
        else leaderSignal.addEventListener("abort", () => resolve(), { once: true });
      });
      passes = undefined;
      await termPasses.idle();
      term = undefined;
      await current.settled();
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
  services: Informer<ServiceResource>;
  namespaces: Informer<NamespaceResource>;
  pools: Informer<PoolResource>;
  configurationState: ConfigurationStateWriter;
};

/** The controller's condition in its ConfigurationState, as MetalLB names it. */
const POOL_CONDITION = "poolReconcilerValid";

type Term = ReturnType<typeof createTerm>;

/**
 * One leadership term: the executor of decide(). Its memory starts empty, so a replica that becomes
 * leader again trusts only what the API shows. A pass never waits for a write: the writer applies
 * them with bounded concurrency, one at a time per object, while the next passes go on; each
 * write's outcome goes back into the memory.
 */
function createTerm(context: TermContext) {
  const { kubeConfig, lbClass, logger, metrics, events, signal, markDirty } = context;
  let memory: Memory = emptyMemory;
  /**
   * The next write of each object, run by `writes`: a newer one replaces one that has not started
   * (it would only be overwritten), keeping its place in the queue.
   */
  const intents = new Map<string, () => Promise<void>>();
  const writes = createWorkQueue<string>({
    concurrency: WRITE_CONCURRENCY,
    backoff: { initialMs: 200, maxMs: 30_000 },
    onError: (key, error, retryInMs) => logger.warn({ err: error, object: key, retryInMs: Math.round(retryInMs) }, "write failed"),
    signal,
    work: async (key) => {
      // A key runs again when its backoff has ended: it may be written again.
      memory = backoffEnded(memory, key);
      const write = intents.get(key);
      intents.delete(key);
      if (write === undefined) markDirty();
      else await write();
    },
  });
  const submit = (key: string, write: () => Promise<void>) => {
    intents.set(key, write);
    writes.add(key);
  };
  /**
   * The resourceVersions the informers showed for objects while a write to them ran: a write's
   * own version may come back through the watch before its response does.
   */
  const seenWhileWriting = new Map<string, Set<string>>();
  /** The latest pass's pool statuses, written once the writer has nothing else to do. */
  let poolStatusWrites: PoolStatusWrite[] = [];
  let poolStatusesQueued = false;

  function note(key: string, object: { metadata?: { resourceVersion?: string } } | undefined): void {
    const version = object?.metadata?.resourceVersion;
    if (version !== undefined) seenWhileWriting.get(key)?.add(version);
  }

  /** Whether the informer shows, or showed while the write ran, the version the write returned. */
  function seen(key: string, current: { metadata?: { resourceVersion?: string } } | undefined, version: string): boolean {
    return current?.metadata?.resourceVersion === version || seenWhileWriting.get(key)?.has(version) === true;
  }

  /** Rethrows what is worth retrying, so the queue backs the object off; the memory skips it meanwhile. */
  function failed(key: string, write: PendingWrite | undefined, error: unknown): void {
    // Deleted, or replaced by an object of another uid: the informer will say so and we re-plan.
    const retry = !isStatus(error, 404) && !isStatus(error, 409);
    memory = writeFailed(memory, key, write, retry);
    if (retry) throw error;
  }

  async function patch<T extends { metadata?: { resourceVersion?: string } }>(path: string, uid: string | undefined, body: Record<string, unknown>, writeSignal: AbortSignal): Promise<T> {
    return kubeRequest<T>(kubeConfig, {
      method: "PATCH",
      path,
      contentType: MERGE_PATCH,
      // The uid makes the patch fail rather than land on an object recreated under the same name.
      body: { ...body, metadata: { ...(body.metadata as object | undefined), uid } },
      signal: writeSignal,
    });
  }

  /** Status first, then the pool annotation; `clearing` is said just before addresses go. */
  function submitService(write: ServiceWrite): void {
    const { key, object, write: pending } = write;
    const location = { namespace: object.namespace, name: object.name };
    submit(key, async () => {
      seenWhileWriting.set(key, new Set());
      try {
        let version: string | undefined;
        if (write.writeStatus) {
          const ips = pending.ips ?? [];
          if (write.clearing !== undefined) {
            logger.info({ service: key, ips: write.clearing.held, reason: write.clearing.message }, "clearing assignment");
            events.record(object, "Normal", "ClearAssignment", write.clearing.message);
          }
          const body = { status: { loadBalancer: { ingress: ips.length > 0 ? ips.map((ip) => ({ ip })) : null } } };
          const updated = await patch<ServiceResource>(resourcePath(resources.services, { ...location, subresource: "status" }), pending.uid, body, signal);
          version = updated.metadata?.resourceVersion;
          if (ips.length > 0) {
            logger.info({ service: key, ips, pool: pending.pool }, "address allocated");
            events.record(object, "Normal", "IPAllocated", `Assigned IP ${JSON.stringify(ips)} from pool "${pending.pool}"`);
            metrics.allocations.inc({ pool: pending.pool ?? "" });
          }
        }
        if (write.annotate) {
          const body = { metadata: { annotations: { [ANNOTATION_ALLOCATED_FROM_POOL]: pending.pool ?? null, [LEGACY_ALLOCATED_FROM_POOL]: null } } };
          const updated = await patch<ServiceResource>(resourcePath(resources.services, location), pending.uid, body, signal);
          version = updated.metadata?.resourceVersion;
        }
        const done = version === undefined || seen(key, context.services.get(object.namespace, object.name), version);
        memory = serviceWriteLanded(memory, key, pending, version ?? "", done);
      } catch (error) {
        if (!signal.aborted) failed(key, pending, error);
      } finally {
        seenWhileWriting.delete(key);
        // Whoever waits for a freed address is planned again now.
        if (pending.frees) markDirty();
      }
    });
  }

  /**
   * Pool statuses report the plan, so they are written after the Services' writes: once the writer
   * has nothing else to do, from the latest pass.
   */
  function queuePoolStatuses(): void {
    if (poolStatusesQueued) return;
    poolStatusesQueued = true;
    void writes.idle().then(() => {
      poolStatusesQueued = false;
      if (signal.aborted) return;
      for (const write of poolStatusWrites) {
        const { key } = write;
        if (memory.poolWrites.has(key) || memory.backingOff.has(key)) continue;
        memory = poolWriteSubmitted(memory, key);
        const location = { namespace: write.namespace, name: write.name };
        submit(key, async () => {
          seenWhileWriting.set(key, new Set());
          try {
            const updated = await patch<PoolResource>(resourcePath(resources.ipAddressPools, { ...location, subresource: "status" }), write.uid, { status: write.status }, signal);
            const version = updated.metadata?.resourceVersion;
            const done = version === undefined || seen(key, context.pools.get(write.namespace, write.name), version);
            memory = poolWriteLanded(memory, key, version ?? "", done);
            // Passes skip a pool while its write runs; seen already, no echo will ask for the next one.
            if (done) markDirty();
          } catch (error) {
            if (!signal.aborted) failed(key, undefined, error);
          } finally {
            seenWhileWriting.delete(key);
          }
        });
      }
      poolStatusWrites = [];
    });
  }

  return {
    /** One planning pass: decides and submits; never waits for a write. */
    reconcile(deletions: boolean): void {
      const decision = decide(
        {
          services: context.services.list(),
          namespaceLabels: (namespace) => context.namespaces.get(undefined, namespace)?.metadata?.labels,
          pools: context.pools.list(),
          lbClass,
          now: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          deletions,
        },
        memory,
      );
      memory = decision.memory;
      for (const line of decision.logs) logger[line.level](line.fields, line.message);
      for (const event of decision.events) events.record(event.object, event.type, event.reason, event.message);
      for (const reason of decision.failures) metrics.failures.inc({ reason });
      metrics.configStale.set(decision.config.errors.length > 0 ? 1 : 0);
      metrics.configLoaded.set(decision.config.loaded ? 1 : 0);
      metrics.setUsage(decision.usage);
      context.configurationState.report(configurationReport(POOL_CONDITION, decision.config.errors));
      for (const write of decision.serviceWrites) submitService(write);
      poolStatusWrites = decision.poolStatusWrites;
      queuePoolStatuses();
    },
    /** Tells the memory about a Service change; true when it is only our own write coming back. */
    observeService(event: { type: "ADDED" | "MODIFIED" | "DELETED" | "RESYNC"; object?: ServiceResource }): boolean {
      if (event.object !== undefined) note(serviceKey(event.object), event.object);
      const observed = observeService(memory, event.type, event.object);
      memory = observed.memory;
      return observed.echo;
    },
    observePool(event: { object?: PoolResource }): void {
      if (event.object !== undefined) note(poolKey(event.object.metadata?.name ?? ""), event.object);
      memory = observePool(memory, event.object);
    },
    /** Resolves once the writes of this term are over (they abort with the term's signal). */
    settled: () => writes.idle(),
  };
}
