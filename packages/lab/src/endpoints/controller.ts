// Keeps the lab's EndpointSlices equal to desiredEndpointSlices(): watches Services, writes the difference.
import type { KubeConfig } from "@kubernetes/client-node";
import { createBackoff, createInformer, isStatus, kubeRequest, type Logger, resourcePath, resources, typedResource, waitForSync } from "@bollard/core";
import { desiredEndpointSlices, type EndpointSlice, type LabPod, MANAGED_BY, type SelectorService } from "./slices.ts";

export interface EndpointsController {
  setPods(pods: LabPod[]): void;
  /** Resolves once the slices match the current pods and Services. */
  settled(): Promise<void>;
  stop(): void;
}

export async function startEndpointsController(opts: {
  kubeConfig: KubeConfig;
  logger: Logger;
  signal: AbortSignal;
  pods: LabPod[];
}): Promise<EndpointsController> {
  const common = { kubeConfig: opts.kubeConfig, logger: opts.logger, signal: opts.signal };
  const services = createInformer({ ...common, resource: typedResource<SelectorService>(resources.services) });
  const slices = createInformer({
    ...common,
    resource: typedResource<EndpointSlice>(resources.endpointSlices),
    labelSelector: `endpointslice.kubernetes.io/managed-by=${MANAGED_BY}`,
  });
  await waitForSync(services, slices);
  let pods = opts.pods;
  let running: Promise<void> | undefined;
  let again = false;
  const backoff = createBackoff({ initialMs: 100, maxMs: 3000 });

  const reconcile = async (): Promise<void> => {
    const desired = desiredEndpointSlices(services.list(), pods);
    const wanted = new Set(desired.map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
    for (const slice of desired) {
      const base = resourcePath(resources.endpointSlices, { namespace: slice.metadata.namespace });
      const current = slices.get(slice.metadata.namespace, slice.metadata.name);
      if (current && JSON.stringify([current.endpoints ?? [], current.ports ?? []]) === JSON.stringify([slice.endpoints, slice.ports])) continue;
      try {
        await kubeRequest(opts.kubeConfig, { method: "POST", path: base, body: slice });
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
        await kubeRequest(opts.kubeConfig, {
          method: "PUT",
          path: resourcePath(resources.endpointSlices, { namespace: slice.metadata.namespace, name: slice.metadata.name }),
          body: slice,
        });
      }
    }
    for (const slice of slices.list()) {
      const ns = slice.metadata?.namespace ?? "";
      if (wanted.has(`${ns}/${slice.metadata?.name}`)) continue;
      await kubeRequest(opts.kubeConfig, {
        method: "DELETE",
        path: resourcePath(resources.endpointSlices, { namespace: ns, name: slice.metadata?.name }),
      }).catch((err) => {
        if (!isStatus(err, 404)) throw err;
      });
    }
  };

  const kick = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await reconcile();
          backoff.reset();
        } catch (err) {
          opts.logger.warn({ err }, "endpoint slices: reconcile failed, retrying");
          again = true;
          await new Promise((r) => setTimeout(r, backoff.next()));
        }
      } while (again && !opts.signal.aborted);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  services.onChange(() => void kick());
  await kick();
  return {
    setPods(next) {
      pods = next;
      void kick();
    },
    settled: () => kick(),
    stop() {
      services.stop();
      slices.stop();
    },
  };
}
