// The slice of Kubernetes objects the route compiler reads. Plain data as the API server (or a YAML file)
// spells it; informers may hand over Dates for timestamps, manifests strings, so both are accepted.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string | Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ServiceBackendPort {
  number?: number;
  name?: string;
}

export interface IngressBackend {
  service?: { name: string; port?: ServiceBackendPort };
  resource?: { apiGroup?: string; kind: string; name: string };
}

export type PathType = "Exact" | "Prefix" | "ImplementationSpecific";

export interface HTTPIngressPath {
  path?: string;
  pathType?: PathType | string;
  backend: IngressBackend;
}

export interface IngressRule {
  host?: string;
  http?: { paths?: HTTPIngressPath[] };
}

export interface IngressTLS {
  hosts?: string[];
  secretName?: string;
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  ports?: { port: number; protocol: string; error?: string }[];
}

export interface Ingress {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    ingressClassName?: string;
    defaultBackend?: IngressBackend;
    rules?: IngressRule[];
    tls?: IngressTLS[];
  };
  status?: { loadBalancer?: { ingress?: LoadBalancerIngress[] } };
}

export interface IngressClass {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { controller?: string };
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

export interface Service {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { type?: string; externalName?: string; clusterIP?: string; ports?: ServicePort[] };
  status?: { loadBalancer?: { ingress?: LoadBalancerIngress[] } };
}

export interface EndpointSlice {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  addressType?: string;
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean } }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  data?: Record<string, string>;
}

export interface Secret {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  type?: string;
  /** base64, as the API serves it */
  data?: Record<string, string>;
  /** plain text, as a manifest may write it */
  stringData?: Record<string, string>;
}

/** Everything the route compiler looks at, as plain objects. */
export interface Snapshot {
  ingresses: Ingress[];
  ingressClasses: IngressClass[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  secrets: Secret[];
  /** ConfigMaps that annotations name (custom-headers); absent: none */
  configMaps?: ConfigMap[];
}

export const emptySnapshot = (): Snapshot => ({ ingresses: [], ingressClasses: [], services: [], endpointSlices: [], secrets: [], configMaps: [] });

/** An object's reference as `namespace/name`. */
export interface ObjectRef {
  namespace: string;
  name: string;
}

export const refOf = (meta: ObjectMeta): ObjectRef => ({ namespace: meta.namespace ?? "default", name: meta.name });

export const refKey = (ref: ObjectRef): string => `${ref.namespace}/${ref.name}`;

/** Milliseconds since the epoch; objects without a timestamp count as newest. */
export function createdAt(meta: ObjectMeta): number {
  const t = meta.creationTimestamp;
  if (t === undefined) return Number.POSITIVE_INFINITY;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/** Oldest first, then namespace/name: the order in which Ingresses claim routes. */
export function compareByAge(a: { metadata: ObjectMeta }, b: { metadata: ObjectMeta }): number {
  const ta = createdAt(a.metadata);
  const tb = createdAt(b.metadata);
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = refKey(refOf(a.metadata));
  const kb = refKey(refOf(b.metadata));
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
