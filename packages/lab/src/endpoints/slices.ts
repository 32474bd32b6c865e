// The lab's stand-in for the EndpointSlice controller: lab "pods" (processes in node namespaces with labels)
// matched against Service selectors give the EndpointSlices Kubernetes would write. Pure.

export interface LabPod {
  name: string;
  namespace: string;
  nodeName: string;
  ip: string;
  labels: Record<string, string>;
  ports: { name: string; port: number; protocol?: "TCP" | "UDP" }[];
  ready: boolean;
}

export interface SelectorService {
  metadata: { name: string; namespace: string; uid?: string };
  spec: {
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
    type?: string;
  };
}

export interface EndpointSlice {
  apiVersion: "discovery.k8s.io/v1";
  kind: "EndpointSlice";
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences?: object[] };
  addressType: "IPv4" | "IPv6";
  endpoints: { addresses: string[]; nodeName: string; conditions: { ready: boolean; serving: boolean; terminating: boolean }; targetRef: object }[];
  ports: { name: string; port: number; protocol: string }[];
}

export const MANAGED_BY = "bollard-lab";

export function desiredEndpointSlices(services: SelectorService[], pods: LabPod[]): EndpointSlice[] {
  const out: EndpointSlice[] = [];
  for (const svc of services) {
    const selector = svc.spec.selector;
    if (selector === undefined || Object.keys(selector).length === 0 || svc.spec.type === "ExternalName") continue;
    const members = pods
      .filter((p) => p.namespace === svc.metadata.namespace && Object.entries(selector).every(([k, v]) => p.labels[k] === v))
      .sort((a, b) => a.name.localeCompare(b.name));
    for (const family of ["IPv4", "IPv6"] as const) {
      const familyPods = members.filter((p) => (p.ip.includes(":") ? "IPv6" : "IPv4") === family);
      if (familyPods.length === 0 && family === "IPv6") continue;
      const first = familyPods[0];
      const ports = (svc.spec.ports ?? []).flatMap((sp) => {
        const target = sp.targetPort ?? sp.port;
        const port = typeof target === "number" ? target : first?.ports.find((p) => p.name === target)?.port;
        return port === undefined ? [] : [{ name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" }];
      });
      out.push({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: `${svc.metadata.name}-lab-${family.toLowerCase()}`,
          namespace: svc.metadata.namespace,
          labels: { "kubernetes.io/service-name": svc.metadata.name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY },
          ...(svc.metadata.uid
            ? { ownerReferences: [{ apiVersion: "v1", kind: "Service", name: svc.metadata.name, uid: svc.metadata.uid }] }
            : {}),
        },
        addressType: family,
        endpoints: familyPods.map((p) => ({
          addresses: [p.ip],
          nodeName: p.nodeName,
          conditions: { ready: p.ready, serving: p.ready, terminating: false },
          targetRef: { kind: "Pod", namespace: p.namespace, name: p.name },
        })),
        ports,
      });
    }
  }
  return out;
}
