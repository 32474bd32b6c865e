// Keeps this node's `metallb.io/v1beta1` ServiceL2Status objects equal to what it announces: one per
// Service, named from (node, Service) so a retry never duplicates one. `status.node` is immutable, so
// objects are never moved between nodes: the old announcer deletes its own, the new one creates its own.
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { createBackoff, type Informer, isStatus, kubeRequest, type Logger } from "@bollard/core";

export const NODE_LABEL = "metallb.io/node";
export const SERVICE_NAME_LABEL = "metallb.io/service-name";
export const SERVICE_NAMESPACE_LABEL = "metallb.io/service-namespace";

export interface ServiceL2Status {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  status?: { node?: string; serviceName?: string; serviceNamespace?: string; interfaces?: Array<{ name?: string }> };
}

export interface DesiredL2Status {
  serviceNamespace: string;
  serviceName: string;
  interfaces: string[];
}

export function l2StatusName(node: string, serviceNamespace: string, serviceName: string): string {
  return `l2-${createHash("sha256").update(`${node}/${serviceNamespace}/${serviceName}`).digest("hex").slice(0, 16)}`;
}

export interface L2StatusWriter {
  /** Replaces the desired set; writes happen in the background, retried with backoff. */
  set(desired: readonly DesiredL2Status[]): void;
  /** Deletes every object of this node (on shutdown), bounded by `timeoutMs`. */
  clear(timeoutMs: number): Promise<void>;
}

export function createL2StatusWriter(options: {
  kubeConfig: KubeConfig;
  namespace: string;
  node: string;
  /** ServiceL2Status objects labelled with this node. */
  existing: Informer<ServiceL2Status>;
  logger: Logger;
  signal: AbortSignal;
}): L2StatusWriter {
  const { kubeConfig, namespace, node, existing, signal } = options;
  const log = options.logger.child({ component: "l2-status" });
  const collection = `/apis/metallb.io/v1beta1/namespaces/${namespace}/servicel2statuses`;
  const backoff = createBackoff({ initialMs: 200, maxMs: 10_000 });
  let desired = new Map<string, DesiredL2Status>();
  let running = false;
  let again = false;
  let retry: NodeJS.Timeout | undefined;

  const statusOf = (d: DesiredL2Status) => ({
    node,
    serviceName: d.serviceName,
    serviceNamespace: d.serviceNamespace,
    interfaces: d.interfaces.map((name) => ({ name })),
  });

  async function syncOnce(target: Map<string, DesiredL2Status>): Promise<void> {
    const current = new Map(existing.list().map((o) => [o.metadata.name, o]));
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
              kind: "ServiceL2Status",
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
        path: `${collection}/${name}/status`,
        contentType: "application/merge-patch+json",
        body: { status },
        signal,
      });
      log.debug({ name, service: `${d.serviceNamespace}/${d.serviceName}` }, "ServiceL2Status written");
    }
    for (const name of current.keys()) {
      if (target.has(name)) continue;
      try {
        await kubeRequest(kubeConfig, { method: "DELETE", path: `${collection}/${name}`, signal });
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
      log.debug({ name }, "ServiceL2Status deleted");
    }
  }

  async function sync(): Promise<void> {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await syncOnce(desired);
      } while (again && !signal.aborted);
      backoff.reset();
    } catch (err) {
      if (signal.aborted) return;
      const delay = backoff.next();
      log.warn({ err, retryInMs: Math.round(delay) }, "writing ServiceL2Status failed");
      clearTimeout(retry);
      retry = setTimeout(() => void sync(), delay);
    } finally {
      running = false;
    }
  }

  // The informer's view lags our own writes; re-checking on its changes converges without polling.
  existing.onChange(() => {
    if (!running) void sync();
  });

  return {
    set(next) {
      desired = new Map(next.map((d) => [l2StatusName(node, d.serviceNamespace, d.serviceName), d]));
      void sync();
    },
    async clear(timeoutMs) {
      clearTimeout(retry);
      const deadline = AbortSignal.timeout(timeoutMs);
      await Promise.allSettled(
        existing.list().map((o) => kubeRequest(kubeConfig, { method: "DELETE", path: `${collection}/${o.metadata.name}`, signal: deadline })),
      );
    },
  };
}
