// The shapes of the API objects the shell reads and writes, as plain JSON (the informers hand
// out parsed JSON, not client-node model classes).
import type { ServiceObject } from "../service/request.ts";

type Metadata = {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};

export type ServiceResource = ServiceObject & { apiVersion?: string; kind?: string; metadata?: Metadata };

export type NamespaceResource = { apiVersion?: string; kind?: string; metadata?: Metadata };

export type PoolCondition = {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
};

export type PoolStatus = {
  assignedIPv4?: number;
  assignedIPv6?: number;
  availableIPv4?: number;
  availableIPv6?: number;
  conditions?: PoolCondition[];
};

export type PoolResource = { apiVersion?: string; kind?: string; metadata?: Metadata; spec?: unknown; status?: PoolStatus };

/** The `metadata.creationTimestamp` string (typed as Date by client-node, a string on the wire). */
export function creationTimestamp(object: { metadata?: unknown }): string {
  const value = (object.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp;
  return typeof value === "string" ? value : "";
}
