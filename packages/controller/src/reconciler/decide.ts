// The controller's decision, pure: a snapshot of Services, Namespaces and IPAddressPools plus the
// controller's memory in; the writes, Events and log lines that make the cluster as planned, and
// the memory for the next pass, out. No Kubernetes client, timers or logging here — the executor
// (controller.ts) applies the result and reports back through the functions at the end of this file.
//
// resourceVersions are opaque: they are only ever compared for equality (is this the version our
// own write returned?), never ordered.
import { type InvolvedObject, type Labels, loadPools, type Pool } from "@bollard/core";
import { planAllocations, type ServiceState } from "../allocator/plan.ts";
import type { FailureReason, PoolUsage, ServiceOutcome } from "../allocator/types.ts";
import { ANNOTATION_ALLOCATED_FROM_POOL, currentIPs, isHandledLoadBalancer, serviceKey, serviceRequest } from "../service/request.ts";
import { creationTimestamp, type PoolCondition, type PoolResource, type PoolStatus, type ServiceResource } from "./resources.ts";

export const LEGACY_ALLOCATED_FROM_POOL = "metallb.universe.tf/ip-allocated-from-pool";
const POOL_API = "metallb.io/v1beta1";
const NO_LABELS: Labels = {};

export type Snapshot = {
  /** Every Service the informer holds. */
  services: readonly ServiceResource[];
  /** A namespace's labels (for `namespaceSelectors`); undefined when the Namespace is unknown. */
  namespaceLabels: (namespace: string) => Labels | undefined;
  /** The IPAddressPools of the config namespace. */
  pools: readonly PoolResource[];
  /** Handle only Services of this spec.loadBalancerClass; undefined: only Services without one. */
  lbClass: string | undefined;
  /** RFC 3339 time, for a condition's lastTransitionTime. */
  now: string;
  /** Services may have gone since the last pass: forget what is remembered about them. */
  deletions: boolean;
};

/**
 * A Service write submitted and not yet seen back through the informer. Until then the Service is
 * counted as looking as the write makes it. `landed`: the write succeeded and returned this
 * resourceVersion, which the informer has not shown yet.
 */
export type PendingWrite = {
  uid: string;
  /** The addresses the write gives; undefined: it leaves them alone. */
  ips: readonly string[] | undefined;
  /** The pool annotation it writes; undefined removes it (and the legacy one). */
  pool: string | undefined;
  /** It takes addresses away: whoever waits for them is planned again once it lands. */
  frees: boolean;
  landed?: string;
};

/**
 * What one leadership term remembers between passes. It starts empty (`emptyMemory`), so a new
 * leader trusts only what the API shows. Never mutated: every function returns a new one.
 */
export type Memory = {
  /** The last valid pool configuration, used while the current one is invalid. */
  lastGood: readonly Pool[] | undefined;
  /** The configuration errors already reported (joined), so each is reported once. */
  reportedConfig: string | undefined;
  /** Service writes in flight or landed but not yet seen, by Service key. */
  pending: ReadonlyMap<string, PendingWrite>;
  /** Pool status writes in flight (undefined) or landed with this resourceVersion, by pool key. */
  poolWrites: ReadonlyMap<string, string | undefined>;
  /** Objects whose last write failed, not written again until their backoff ends. */
  backingOff: ReadonlySet<string>;
  /** Allocation failure already reported, by Service uid. */
  reportedFailures: ReadonlyMap<string, string>;
  /** `uid/annotation` of deprecated annotations already reported. */
  reportedDeprecations: ReadonlySet<string>;
};

export const emptyMemory: Memory = {
  lastGood: undefined,
  reportedConfig: undefined,
  pending: new Map(),
  poolWrites: new Map(),
  backingOff: new Set(),
  reportedFailures: new Map(),
  reportedDeprecations: new Set(),
};

/**
 * Makes a Service as desired: `ips` (when defined) to status.loadBalancer.ingress through the
 * status subresource first, then the pool annotation when `annotate`.
 */
export type ServiceWrite = {
  key: string;
  object: InvolvedObject;
  /** Also in the memory's `pending`: the executor reports back with it. */
  write: PendingWrite;
  /** Write status.loadBalancer.ingress (write.ips). */
  writeStatus: boolean;
  /** Write the pool annotation (write.pool; undefined removes it) and remove the legacy one. */
  annotate: boolean;
  /** The addresses are being taken away, and why: an Event and a log line just before the write. */
  clearing?: { held: readonly string[]; message: string };
};

export type PoolStatusWrite = { key: string; namespace: string | undefined; name: string; uid: string | undefined; status: PoolStatus };

export type EventRecord = { object: InvolvedObject; type: "Normal" | "Warning"; reason: string; message: string };

export type LogRecord = { level: "info" | "warn"; fields: Record<string, unknown>; message: string };

export type Decision = {
  serviceWrites: ServiceWrite[];
  /** Pool statuses that differ from the plan; written after the Service writes. */
  poolStatusWrites: PoolStatusWrite[];
  events: EventRecord[];
  logs: LogRecord[];
  /** Newly reported allocation failures (for the failure counter). */
  failures: FailureReason[];
  usage: PoolUsage[];
  /** The current configuration's errors ([] when valid); `loaded`: a good configuration is in use. */
  config: { errors: string[]; loaded: boolean };
  memory: Memory;
};

export function poolKey(name: string): string {
  return `IPAddressPool ${name}`;
}

/** One planning pass over the whole snapshot. */
export function decide(snapshot: Snapshot, memory: Memory): Decision {
  const out: Omit<Decision, "memory" | "usage" | "config"> = { serviceWrites: [], poolStatusWrites: [], events: [], logs: [], failures: [] };
  const next = cow(memory);

  const poolObjects = [...snapshot.pools].sort((a, b) => compare(a.metadata?.name ?? "", b.metadata?.name ?? ""));
  const config = loadPools(poolObjects);
  const problems = new Map<string, string[]>();
  const errors = "errors" in config ? config.errors : [];
  for (const error of errors) for (const name of error.pools) problems.set(name, [...(problems.get(name) ?? []), error.message]);
  if (!("errors" in config)) next.set("lastGood", config.pools);
  reportConfig(errors, poolObjects, next, out);

  const pendingFor = (service: ServiceResource): PendingWrite | undefined => {
    const entry = next.get("pending").get(serviceKey(service));
    return entry !== undefined && entry.uid === service.metadata?.uid ? entry : undefined;
  };
  /** The addresses the API shows (or will, once a landed write is seen). */
  const shownIPs = (service: ServiceResource): readonly string[] => {
    const entry = pendingFor(service);
    return entry?.landed !== undefined && entry.ips !== undefined ? entry.ips : currentIPs(service);
  };
  /** The addresses a Service holds: what a pending write gives it, else its status. */
  const heldIPs = (service: ServiceResource): string[] => [...(pendingFor(service)?.ips ?? currentIPs(service))];
  /** The pool annotation as it is or will be, and whether a legacy one is left. */
  const heldAnnotation = (service: ServiceResource): { pool: string | undefined; legacy: boolean } => {
    const entry = pendingFor(service);
    if (entry !== undefined) return { pool: entry.pool, legacy: false };
    const annotations = service.metadata?.annotations ?? {};
    return { pool: annotations[ANNOTATION_ALLOCATED_FROM_POOL], legacy: Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL) };
  };
  /** `leaving`: address → the Service it is being taken from; nobody else gets it before the API shows it gone. */
  const leaving = new Map<string, string>();
  const noteLeaving = (service: ServiceResource, keeps: readonly string[] | undefined) => {
    if (keeps === undefined) return;
    for (const ip of shownIPs(service)) if (!keeps.includes(ip)) leaving.set(ip, serviceKey(service));
  };

  /** Submits the write that makes `service` as desired, unless it is so already or backing off. */
  const submit = (service: ServiceResource, ips: readonly string[] | undefined, pool: string | undefined, clearingWhy: string | undefined) => {
    const key = serviceKey(service);
    const held = heldIPs(service);
    const annotation = heldAnnotation(service);
    const writeStatus = ips !== undefined && !sameList(ips, held);
    const annotate = annotation.pool !== pool || annotation.legacy;
    if ((!writeStatus && !annotate) || next.get("backingOff").has(key)) return;
    const write: PendingWrite = { uid: service.metadata?.uid ?? "", ips: writeStatus ? ips : pendingFor(service)?.ips, pool, frees: writeStatus && held.some((ip) => !ips.includes(ip)) };
    next.mutable("pending").set(key, write);
    out.serviceWrites.push({
      key,
      object: serviceRef(service),
      write,
      writeStatus,
      annotate,
      ...(writeStatus && held.length > 0 && clearingWhy !== undefined ? { clearing: { held, message: `cleared ${held.join(",")}: ${clearingWhy}` } } : {}),
    });
  };

  // Services we gave addresses to that are ours no longer: drop our annotation, and free their
  // addresses if they are no LoadBalancer any more.
  for (const service of snapshot.services) {
    if (isHandledLoadBalancer(service, snapshot.lbClass)) continue;
    const annotations = service.metadata?.annotations ?? {};
    const ours = Object.hasOwn(annotations, ANNOTATION_ALLOCATED_FROM_POOL) || Object.hasOwn(annotations, LEGACY_ALLOCATED_FROM_POOL);
    if (!ours && pendingFor(service) === undefined) continue;
    // Noted as leaving even while the clearing write is in flight, until the API shows them gone.
    const ips = service.spec?.type !== "LoadBalancer" ? [] : undefined;
    noteLeaving(service, ips);
    submit(service, ips, undefined, "not a LoadBalancer Service any more");
  }

  let usage: PoolUsage[] = [];
  const lastGood = next.get("lastGood");
  if (lastGood !== undefined) {
    const handled = snapshot.services
      .filter((service) => isHandledLoadBalancer(service, snapshot.lbClass))
      .map((service) => ({ service, created: creationTimestamp(service), key: serviceKey(service) }))
      .sort((a, b) => compare(a.created, b.created) || compare(a.key, b.key))
      .map(({ service }) => service);
    const deprecated = new Map<string, string[]>();
    const states: ServiceState[] = handled.map((service) => {
      const built = requestOf(service, snapshot.namespaceLabels(service.metadata?.namespace ?? "") ?? NO_LABELS);
      deprecated.set(built.request.key, built.deprecated);
      return { request: built.request, currentIPs: heldIPs(service) };
    });
    const plan = planAllocations(lastGood, states);
    usage = plan.usage;
    for (const [i, service] of handled.entries()) noteLeaving(service, (plan.outcomes[i] as ServiceOutcome).ips);
    for (const [i, service] of handled.entries()) {
      const outcome = plan.outcomes[i] as ServiceOutcome;
      const uid = service.metadata?.uid ?? outcome.key;
      for (const annotation of deprecated.get(outcome.key) ?? []) {
        if (next.get("reportedDeprecations").has(`${uid}/${annotation}`)) continue;
        next.mutable("reportedDeprecations").add(`${uid}/${annotation}`);
        const replacement = `metallb.io/${annotation.slice(annotation.indexOf("/") + 1)}`;
        out.events.push({ object: serviceRef(service), type: "Warning", reason: "DeprecatedAnnotation", message: `${annotation} is deprecated; use ${replacement}` });
      }
      if (outcome.failure !== undefined) {
        const message = `${outcome.failure.reason}: ${outcome.failure.message}`;
        if (next.get("reportedFailures").get(uid) !== message) {
          next.mutable("reportedFailures").set(uid, message);
          out.logs.push({ level: "warn", fields: { service: outcome.key, reason: outcome.failure.reason }, message: outcome.failure.message });
          out.events.push({ object: serviceRef(service), type: "Warning", reason: "AllocationFailed", message });
          out.failures.push(outcome.failure.reason);
        }
      } else if (next.get("reportedFailures").has(uid)) {
        next.mutable("reportedFailures").delete(uid);
      }
      if (outcome.ips.some((ip) => (leaving.get(ip) ?? outcome.key) !== outcome.key)) continue;
      submit(service, outcome.ips, outcome.ips.length > 0 ? outcome.pool : undefined, outcome.cleared === undefined ? undefined : `${outcome.cleared}; allocating anew`);
    }
  }

  for (const pool of poolObjects) {
    const name = pool.metadata?.name ?? "";
    const key = poolKey(name);
    if (next.get("poolWrites").has(key) || next.get("backingOff").has(key)) continue;
    const status = desiredPoolStatus(
      pool,
      usage.find((u) => u.pool === name),
      problems.get(name) ?? [],
      snapshot.now,
    );
    if (status !== undefined) out.poolStatusWrites.push({ key, namespace: pool.metadata?.namespace, name, uid: pool.metadata?.uid, status });
  }

  if (snapshot.deletions) forgetDeleted(snapshot.services, next);
  return { ...out, usage, config: { errors: errors.map((error) => error.message), loaded: lastGood !== undefined }, memory: next.done() };
}

function reportConfig(
  errors: readonly { pools: string[]; message: string; field: string; pool: string }[],
  poolObjects: readonly PoolResource[],
  next: Cow,
  out: { events: EventRecord[]; logs: LogRecord[] },
): void {
  const summary = errors.map((error) => error.message).join("\n");
  if (summary === next.get("reportedConfig")) return;
  next.set("reportedConfig", summary);
  const lastGood = next.get("lastGood");
  if (errors.length === 0) {
    out.logs.push({ level: "info", fields: { pools: lastGood?.length ?? 0 }, message: "pool configuration loaded" });
    return;
  }
  const keeping = lastGood !== undefined ? "keeping the last good configuration" : "no good configuration yet: allocating nothing";
  for (const error of errors) {
    out.logs.push({ level: "warn", fields: { pool: error.pool, field: error.field }, message: `invalid IPAddressPool configuration, ${keeping}: ${error.message}` });
  }
  for (const pool of poolObjects) {
    const mine = errors.filter((error) => error.pools.includes(pool.metadata?.name ?? ""));
    if (mine.length === 0) continue;
    out.events.push({ object: poolRef(pool), type: "Warning", reason: "InvalidConfiguration", message: `${mine.map((error) => error.message).join("; ")}; ${keeping}` });
  }
}

/** The status a pool should have, or undefined when it has it already. */
function desiredPoolStatus(pool: PoolResource, usage: PoolUsage | undefined, problems: readonly string[], now: string): PoolStatus | undefined {
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
    lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
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

function forgetDeleted(services: readonly ServiceResource[], next: Cow): void {
  const uids = new Set(services.map((service) => service.metadata?.uid ?? ""));
  const keys = new Set(services.map(serviceKey));
  for (const [key, entry] of next.get("pending")) if (!keys.has(key) || !uids.has(entry.uid)) next.mutable("pending").delete(key);
  for (const key of next.get("backingOff")) if (!key.startsWith("IPAddressPool ") && !keys.has(key)) next.mutable("backingOff").delete(key);
  for (const uid of next.get("reportedFailures").keys()) if (!uids.has(uid)) next.mutable("reportedFailures").delete(uid);
  for (const entry of next.get("reportedDeprecations")) {
    if (!uids.has(entry.slice(0, entry.indexOf("/")))) next.mutable("reportedDeprecations").delete(entry);
  }
}

// What the executor reports back. Each returns a new memory.

/**
 * A Service write succeeded with `resourceVersion`. `seen`: the informer has already shown that
 * version, so the write is over; otherwise it counts as landed until `observeService` sees it.
 * A write that a newer one has replaced changes nothing.
 */
export function serviceWriteLanded(memory: Memory, key: string, write: PendingWrite, resourceVersion: string, seen: boolean): Memory {
  if (memory.pending.get(key) !== write) return memory;
  const next = cow(memory);
  if (seen) next.mutable("pending").delete(key);
  else next.mutable("pending").set(key, { ...write, landed: resourceVersion });
  return next.done();
}

/**
 * An object's write failed. `retry`: back off before writing it again (`backoffEnded` ends that);
 * otherwise (gone, or replaced by another uid) the informer will say so and the next pass re-plans.
 * `write`: the failed Service write, no longer counted unless a newer one has replaced it.
 */
export function writeFailed(memory: Memory, key: string, write: PendingWrite | undefined, retry: boolean): Memory {
  const next = cow(memory);
  if (write !== undefined && memory.pending.get(key) === write) next.mutable("pending").delete(key);
  if (write === undefined && memory.poolWrites.has(key)) next.mutable("poolWrites").delete(key);
  if (retry) next.mutable("backingOff").add(key);
  return next.done();
}

export function backoffEnded(memory: Memory, key: string): Memory {
  if (!memory.backingOff.has(key)) return memory;
  const next = cow(memory);
  next.mutable("backingOff").delete(key);
  return next.done();
}

export function poolWriteSubmitted(memory: Memory, key: string): Memory {
  const next = cow(memory);
  next.mutable("poolWrites").set(key, undefined);
  return next.done();
}

export function poolWriteLanded(memory: Memory, key: string, resourceVersion: string, seen: boolean): Memory {
  const next = cow(memory);
  if (seen) next.mutable("poolWrites").delete(key);
  else next.mutable("poolWrites").set(key, resourceVersion);
  next.mutable("backingOff").delete(key);
  return next.done();
}

/**
 * The informer changed (`object` undefined: it listed everything again). `echo`: the object is
 * the one our own landed write returned and frees nothing, so there is nothing new to plan.
 */
export function observeService(memory: Memory, type: "ADDED" | "MODIFIED" | "DELETED" | "RESYNC", object: ServiceResource | undefined): { memory: Memory; echo: boolean } {
  if (object === undefined || type === "RESYNC") return { memory: dropLanded(memory, "pending"), echo: false };
  const key = serviceKey(object);
  const entry = memory.pending.get(key);
  if (entry === undefined) return { memory, echo: false };
  const gone = type === "DELETED" || entry.uid !== object.metadata?.uid;
  const isLanded = entry.landed !== undefined && entry.landed === object.metadata?.resourceVersion;
  if (!gone && !isLanded) return { memory, echo: false };
  const next = cow(memory);
  next.mutable("pending").delete(key);
  return { memory: next.done(), echo: isLanded && type === "MODIFIED" && !entry.frees };
}

/** As observeService, for pools; a pool's change is always planned. */
export function observePool(memory: Memory, object: PoolResource | undefined): Memory {
  if (object === undefined) return dropLanded(memory, "poolWrites");
  const key = poolKey(object.metadata?.name ?? "");
  const landed = memory.poolWrites.get(key);
  if (landed === undefined || landed !== object.metadata?.resourceVersion) return memory;
  const next = cow(memory);
  next.mutable("poolWrites").delete(key);
  return next.done();
}

/**
 * After a relist the informer may never show a version a write returned: landed writes are over
 * (at worst the next pass repeats a write, which changes nothing).
 */
function dropLanded(memory: Memory, field: "pending" | "poolWrites"): Memory {
  const next = cow(memory);
  if (field === "pending") {
    for (const [key, entry] of memory.pending) if (entry.landed !== undefined) next.mutable("pending").delete(key);
  } else {
    for (const [key, landed] of memory.poolWrites) if (landed !== undefined) next.mutable("poolWrites").delete(key);
  }
  return next.done();
}

// Copy-on-write over a Memory: a field is copied the first time it changes, so a pass that changes
// little copies little, and the memory handed in is never touched.

type Mutable<T> = T extends ReadonlyMap<infer K, infer V> ? Map<K, V> : T extends ReadonlySet<infer V> ? Set<V> : never;
type CollectionField = "pending" | "poolWrites" | "backingOff" | "reportedFailures" | "reportedDeprecations";
type Cow = {
  get<F extends keyof Memory>(field: F): Memory[F];
  set<F extends "lastGood" | "reportedConfig">(field: F, value: Memory[F]): void;
  mutable<F extends CollectionField>(field: F): Mutable<Memory[F]>;
  done(): Memory;
};

function cow(memory: Memory): Cow {
  const copy: { -readonly [F in keyof Memory]: Memory[F] } = { ...memory };
  const copied = new Set<CollectionField>();
  return {
    get: (field) => copy[field],
    set: (field, value) => {
      copy[field] = value;
    },
    mutable<F extends CollectionField>(field: F): Mutable<Memory[F]> {
      if (!copied.has(field)) {
        copied.add(field);
        const value = copy[field];
        (copy as Record<CollectionField, unknown>)[field] = value instanceof Map ? new Map(value) : new Set(value as ReadonlySet<string>);
      }
      return copy[field] as Mutable<Memory[F]>;
    },
    done: () => copy,
  };
}

/**
 * A Service's request, built once per version of the Service and of its namespace's labels (the
 * informers replace an object when it changes): a burst re-plans often, and most Services in it
 * are unchanged. A cache of a pure function, so decide stays pure.
 */
const requests = new WeakMap<ServiceResource, { labels: Labels; built: ReturnType<typeof serviceRequest> }>();
function requestOf(service: ServiceResource, labels: Labels): ReturnType<typeof serviceRequest> {
  const cached = requests.get(service);
  if (cached !== undefined && cached.labels === labels) return cached.built;
  const built = serviceRequest(service, labels);
  requests.set(service, { labels, built });
  return built;
}

function serviceRef(service: ServiceResource): InvolvedObject {
  return { kind: "Service", apiVersion: "v1", namespace: service.metadata?.namespace, name: service.metadata?.name ?? "", uid: service.metadata?.uid };
}

function poolRef(pool: PoolResource): InvolvedObject {
  return { kind: "IPAddressPool", apiVersion: POOL_API, namespace: pool.metadata?.namespace, name: pool.metadata?.name ?? "", uid: pool.metadata?.uid };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Pool sizes beyond 2^53 (an IPv6 /64 is 2^64) are reported as 2^53 - 1, the largest exact JSON integer. */
function toJSONInteger(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
