// Generated Ingresses for the size benchmarks: many hosts (exact and one-label wildcard, a few host-less), five
// paths each of every path type, backends spread over Services with ready endpoints.
import { seededRandom } from "@bollard/core";
import type { EndpointSlice, Ingress, IngressClass, Service, Snapshot } from "@bollard/ingress";

export const NAMESPACES = 100;
export const SERVICES_PER_NAMESPACE = 10;
export const PATHS_PER_INGRESS = 5;

export const namespaceOf = (i: number) => `bench-${i % NAMESPACES}`;
export const hostOf = (i: number): string | undefined =>
  i % 100 === 99 ? undefined : i % 10 === 0 ? `*.w${i}.bench.example` : `app-${i}.bench.example`;

/** The paths of Ingress i; host-less Ingresses get a unique first segment so they do not collide. */
export function pathsOf(i: number): { path: string; pathType: "Exact" | "Prefix" | "ImplementationSpecific" }[] {
  const base = hostOf(i) === undefined ? `/shared-${i}` : "";
  return [
    { path: base === "" ? "/" : base, pathType: "Prefix" },
    { path: `${base}/api`, pathType: "Prefix" },
    { path: `${base}/api/v1/users`, pathType: "Prefix" },
    { path: `${base}/static/app.js`, pathType: "Exact" },
    { path: `${base}/v${i % 7}/items`, pathType: "ImplementationSpecific" },
  ];
}

export function benchIngress(i: number, className = "bollard"): Ingress {
  const host = hostOf(i);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: `ing-${i}`, namespace: namespaceOf(i), creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + i * 1000).toISOString() },
    spec: {
      ingressClassName: className,
      rules: [
        {
          ...(host === undefined ? {} : { host }),
          http: {
            paths: pathsOf(i).map((p, k) => ({
              ...p,
              backend: { service: { name: `svc-${(i + k) % SERVICES_PER_NAMESPACE}`, port: { number: 80 } } },
            })),
          },
        },
      ],
    },
  };
}

export const benchIngressClass = (): IngressClass => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "IngressClass",
  metadata: { name: "bollard" },
  spec: { controller: "bollard.dev/ingress-controller" },
});

export function benchSnapshot(ingresses: number): Snapshot {
  const services: Service[] = [];
  const endpointSlices: EndpointSlice[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    for (let s = 0; s < SERVICES_PER_NAMESPACE; s++) {
      const namespace = `bench-${n}`;
      const name = `svc-${s}`;
      services.push({ metadata: { name, namespace }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] } });
      endpointSlices.push({
        metadata: { name: `${name}-abcde`, namespace, labels: { "kubernetes.io/service-name": name } },
        addressType: "IPv4",
        endpoints: [1, 2, 3].map((e) => ({ addresses: [`10.${n}.${s}.${e}`], conditions: { ready: true } })),
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      });
    }
  }
  return {
    ingresses: Array.from({ length: ingresses }, (_, i) => benchIngress(i)),
    ingressClasses: [benchIngressClass()],
    services,
    endpointSlices,
    secrets: [],
  };
}

/**
 * Requests spread over a table of `ingresses` Ingresses, the same mix at every size: most hit an exact host
 * at various depths, some a wildcard host, some a host-less path, some nothing (404).
 */
export function benchRequests(ingresses: number, count: number, seed = 1): { host: string; path: string }[] {
  const random = seededRandom(seed);
  const rand = (n: number) => Math.floor(random() * n);
  const tails = ["", "/", "/index.html", "/api", "/api/v1/users/42", "/api/v2", "/static/app.js", "/v3/items/9/detail", "/a/b/c/d/e"];
  const requests: { host: string; path: string }[] = [];
  for (let r = 0; r < count; r++) {
    const i = rand(ingresses);
    const host = hostOf(i);
    const kind = rand(20);
    if (kind === 0) requests.push({ host: `nothing-${i}.example`, path: "/api/v1" });
    else if (host === undefined) requests.push({ host: `any-${r}.example`, path: `/shared-${i}${tails[rand(tails.length)]}` });
    else requests.push({ host: host.startsWith("*.") ? `x${r % 50}.${host.slice(2)}` : host, path: tails[rand(tails.length)] || "/" });
  }
  return requests;
}
