// API objects the ingress tests that run against the real API server create the same way.
import type { KubeConfig } from "@kubernetes/client-node";
import { isStatus, kubeRequest } from "@bollard/core";
import type { send } from "./client.ts";

/**
 * A read-modify-write of the object at `path` with the version read (`write` gets its resourceVersion), read
 * again and retried on a conflict (409), up to 5 times: the controller writes an Ingress's status meanwhile, as
 * any client of the API has to expect.
 */
export async function writeWithFreshVersion(kc: KubeConfig, path: string, write: (resourceVersion: string) => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const current = await kubeRequest<{ metadata: { resourceVersion: string } }>(kc, { method: "GET", path });
    try {
      await write(current.metadata.resourceVersion);
      return;
    } catch (err) {
      if (!isStatus(err, 409) || attempt === 5) throw err;
    }
  }
}

/** A Service `name` (port 80 named http, to `targetPort` when given) and a ready EndpointSlice for it at
 * `address:backendPort`, as the EndpointSlice controller would write it. */
export async function createServiceWithSlice(kc: KubeConfig, ns: string, name: string, address: string, backendPort: number, targetPort?: string): Promise<void> {
  await kubeRequest(kc, {
    method: "POST",
    path: `/api/v1/namespaces/${ns}/services`,
    body: { apiVersion: "v1", kind: "Service", metadata: { name }, spec: { ports: [{ name: "http", port: 80, ...(targetPort ? { targetPort } : {}) }] } },
  });
  await kubeRequest(kc, {
    method: "POST",
    path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    body: {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: `${name}-1`, labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      ports: [{ name: "http", port: backendPort, protocol: "TCP" }],
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
    },
  });
}

/** "200 <backend name>" for an answer of the test backends, else just the status. */
export function statusAndBackend(r: Awaited<ReturnType<typeof send>>): string {
  return `${r.status} ${r.status === 200 ? (JSON.parse(r.body.toString()) as { backend: string }).backend : ""}`.trim();
}
