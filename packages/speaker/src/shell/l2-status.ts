// Keeps this node's `metallb.io/v1beta1` ServiceL2Status objects equal to what it announces: one per
// Service, named from (node, Service) so a retry never duplicates one. `status.node` is immutable, so
// objects are never moved between nodes: the old announcer deletes its own, the new one creates its own.
// A node that dies cannot delete its own, so the new announcer of the Service removes them — but only
// those the dead node left behind, never one written while this node already counted it dead: that
// one comes from a node that is alive after all (a partition), and removing it again would fight it.
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { createWorkQueue, type Informer, isStatus, kubeRequest, type Logger, resourcePath, resources } from "@bollard/core";

export const NODE_LABEL = "metallb.io/node";
export const SERVICE_NAME_LABEL = "metallb.io/service-name";
export const SERVICE_NAMESPACE_LABEL = "metallb.io/service-namespace";

export interface ServiceL2Status {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; resourceVersion?: string };
  status?: { node?: string; serviceName?: string; serviceNamespace?: string; interfaces?: Array<{ name?: string }> };
}

export interface DesiredL2Status {
  serviceNamespace: string;
  serviceName: string;
  interfaces: string[];
}

/** A ServiceBGPStatus: the BGPPeers this node announces the Service to. */
export interface DesiredBgpStatus {
  serviceNamespace: string;
  serviceName: string;
  peers: string[];
}

export function l2StatusName(node: string, serviceNamespace: string, serviceName: string): string {
  return `l2-${createHash("sha256").update(`${node}/${serviceNamespace}/${serviceName}`).digest("hex").slice(0, 16)}`;
}

/** The node an object belongs to: its label, which is set on create (the status is written after). */
export function l2StatusNode(object: ServiceL2Status): string | undefined {
  return object.metadata.labels?.[NODE_LABEL] ?? object.status?.node;
}

function l2StatusService(object: ServiceL2Status): string {
  const labels = object.metadata.labels ?? {};
  return `${labels[SERVICE_NAMESPACE_LABEL] ?? object.status?.serviceNamespace}/${labels[SERVICE_NAME_LABEL] ?? object.status?.serviceName}`;
}

/**
 * Objects the announcer of a Service removes: of a Service it announces (`namespace/name` in
 * `announced`), naming a node that is neither this one nor live, and among `leftBehind` — the uids
 * that existed when their node was last counted dead.
 */
export function orphanedL2Statuses(
  objects: readonly ServiceL2Status[],
  context: { self: string; live: ReadonlySet<string>; announced: ReadonlySet<string>; leftBehind: ReadonlySet<string> },
): ServiceL2Status[] {
  return objects.filter((object) => {
    const node = l2StatusNode(object);
    return (
      node !== undefined &&
      node !== context.self &&
      !context.live.has(node) &&
      object.metadata.uid !== undefined &&
      context.leftBehind.has(object.metadata.uid) &&
      context.announced.has(l2StatusService(object))
    );
  });
}

/**
 * Other nodes' ServiceBGPStatus objects this node removes. In BGP mode every node announces on its own, so no
 * node takes a Service over from another; as MetalLB's objects go with their node, a node's objects are removed
 * once the Node object is gone (deleted from the cluster), and — as for ServiceL2Status — once the node is dead
 * in this node's membership view, if they existed when it was counted dead (`leftBehind`; one written while it
 * was counted dead comes from a node alive behind a partition and is left alone). Every live speaker applies the
 * rule: deletes carry a uid precondition and a 404 or 409 is a no-op, so several removing the same object is
 * harmless.
 */
export function orphanedBgpStatuses(
  objects: readonly ServiceL2Status[],
  context: { self: string; nodes: ReadonlySet<string>; live: ReadonlySet<string> | null; leftBehind: ReadonlySet<string> },
): ServiceL2Status[] {
  return objects.filter((object) => {
    const node = l2StatusNode(object);
    if (node === undefined || node === context.self || object.metadata.uid === undefined) return false;
    if (!context.nodes.has(node)) return true;
    return context.live !== null && !context.live.has(node) && context.leftBehind.has(object.metadata.uid);
  });
}

export interface L2StatusWriter<D = DesiredL2Status> {
  /**
   * Replaces the desired set of this node's objects and the other nodes' objects to remove; writes
   * happen in the background, retried with backoff.
   */
  set(desired: readonly D[], orphans?: readonly ServiceL2Status[]): void;
  /** Deletes every object of this node (on shutdown), bounded by `timeoutMs`. */
  clear(timeoutMs: number): Promise<void>;
}

export function bgpStatusName(node: string, serviceNamespace: string, serviceName: string): string {
  return `bgp-${createHash("sha256").update(`${node}/${serviceNamespace}/${serviceName}`).digest("hex").slice(0, 16)}`;
}

/** The two per-(node, Service) status kinds, written the same way. */
const STATUS_KINDS = {
  ServiceL2Status: { resource: resources.serviceL2Statuses, name: l2StatusName, fields: (d: DesiredL2Status) => ({ interfaces: d.interfaces.map((name) => ({ name })) }) },
  ServiceBGPStatus: { resource: resources.serviceBGPStatuses, name: bgpStatusName, fields: (d: DesiredBgpStatus) => ({ peers: d.peers }) },
};

type StatusWriterOptions = {
  kubeConfig: KubeConfig;
  namespace: string;
  node: string;
  /** The objects of this kind in the namespace, every node's. */
  existing: Informer<ServiceL2Status>;
  logger: Logger;
  signal: AbortSignal;
};

export function createL2StatusWriter(options: StatusWriterOptions): L2StatusWriter {
  return createStatusWriter<DesiredL2Status>(options, "ServiceL2Status");
}

/** The same writer for ServiceBGPStatus (status.peers instead of status.interfaces). */
export function createBgpStatusWriter(options: StatusWriterOptions): L2StatusWriter<DesiredBgpStatus> {
  return createStatusWriter<DesiredBgpStatus>(options, "ServiceBGPStatus");
}

function createStatusWriter<D extends DesiredL2Status | DesiredBgpStatus>(options: StatusWriterOptions, kind: keyof typeof STATUS_KINDS): L2StatusWriter<D> {
  const { kubeConfig, namespace, node, existing, signal } = options;
  const spec = STATUS_KINDS[kind];
  const log = options.logger.child({ component: kind === "ServiceL2Status" ? "l2-status" : "bgp-status" });
  const collection = resourcePath(spec.resource, { namespace });
  const objectPath = (name: string, subresource?: string) =>
    resourcePath(spec.resource, { namespace, name, ...(subresource === undefined ? {} : { subresource }) });
  let desired = new Map<string, D>();
  let orphans: readonly ServiceL2Status[] = [];
  const own = () => existing.list().filter((o) => o.metadata.labels?.[NODE_LABEL] === node);

  const statusOf = (d: D) => ({
    node,
    serviceName: d.serviceName,
    serviceNamespace: d.serviceNamespace,
    ...(kind === "ServiceL2Status" ? STATUS_KINDS.ServiceL2Status.fields(d as DesiredL2Status) : STATUS_KINDS.ServiceBGPStatus.fields(d as DesiredBgpStatus)),
  });

  async function syncOnce(target: Map<string, D>, removeOrphans: readonly ServiceL2Status[]): Promise<void> {
    const current = new Map(own().map((o) => [o.metadata.name, o]));
    for (const [name, d] of target) {
      const have = current.get(name);
      const status = statusOf(d);
      if (have === undefined) {
        try {
          await kubeRequest(kubeConfig, {
            method: "POST",
            path: collection,
            body: {
              apiVersion: "metallb.io/v1beta1",
              kind,
              metadata: {
                name,
                namespace,
                labels: { [NODE_LABEL]: node, [SERVICE_NAME_LABEL]: d.serviceName, [SERVICE_NAMESPACE_LABEL]: d.serviceNamespace },
              },
              spec: {},
            },
            signal,
          });
        } catch (err) {
          if (!isStatus(err, 409)) throw err;
        }
      } else if (JSON.stringify(have.status ?? {}) === JSON.stringify(status)) {
        continue;
      }
      // status is a subresource: a create ignores it, so it is always written separately.
      await kubeRequest(kubeConfig, {
        method: "PATCH",
        path: objectPath(name, "status"),
        contentType: "application/merge-patch+json",
        body: { status },
        signal,
      });
      log.debug({ name, service: `${d.serviceNamespace}/${d.serviceName}` }, `${kind} written`);
    }
    for (const name of current.keys()) {
      if (target.has(name)) continue;
      try {
        await kubeRequest(kubeConfig, { method: "DELETE", path: objectPath(name), signal });
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
      log.debug({ name }, `${kind} deleted`);
    }
    const present = new Set(existing.list().map((o) => o.metadata.uid));
    for (const orphan of removeOrphans) {
      const { name, uid } = orphan.metadata;
      if (!present.has(uid)) continue;
      // The uid precondition: a node that came back may have re-created an object of the same name.
      try {
        await kubeRequest(kubeConfig, { method: "DELETE", path: objectPath(name), body: { preconditions: { uid } }, signal });
        log.info({ name, node: l2StatusNode(orphan), service: l2StatusService(orphan) }, `deleted the ${kind} of a node that is gone`);
      } catch (err) {
        if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
      }
    }
  }

  // One key: a change during a write runs one more pass after it, a failed pass is retried with backoff.
  const queue = createWorkQueue<"sync">({
    work: () => syncOnce(desired, orphans),
    backoff: { initialMs: 200, maxMs: 10_000 },
    onError: (_key, err, retryInMs) => log.warn({ err, retryInMs: Math.round(retryInMs) }, `writing ${kind} failed`),
    signal,
  });
  const sync = () => queue.add("sync");

  // The informer's view lags our own writes; re-checking on its changes converges without polling.
  existing.onChange(sync);

  return {
    set(next, nextOrphans = []) {
      desired = new Map(next.map((d) => [spec.name(node, d.serviceNamespace, d.serviceName), d]));
      orphans = nextOrphans;
      sync();
    },
    async clear(timeoutMs) {
      const deadline = AbortSignal.timeout(timeoutMs);
      await Promise.allSettled(
        own().map((o) => kubeRequest(kubeConfig, { method: "DELETE", path: objectPath(o.metadata.name), signal: deadline })),
      );
    },
  };
}
