import type { Pool } from "@bollard/core";
import { createAllocator } from "./allocator.ts";
import type { PoolUsage, ServiceOutcome, ServiceRequest } from "./types.ts";

/** A Service as the plan sees it: its request and the addresses its status holds now. */
export type ServiceState = { request: ServiceRequest; currentIPs: readonly string[] };

export type Plan = { outcomes: ServiceOutcome[]; usage: PoolUsage[] };

/**
 * Decides the addresses of every Service at once. Addresses Services already hold are restored
 * first, in the given order, and only then are the others allocated, in the given order — so a
 * restart, or any re-plan, never hands a held address to someone else.
 */
export function planAllocations(pools: readonly Pool[], services: readonly ServiceState[]): Plan {
  const allocator = createAllocator(pools);
  const outcomes = new Map<string, ServiceOutcome>();
  const cleared = new Map<string, string>();
  for (const { request, currentIPs } of services) {
    if (currentIPs.length === 0) continue;
    const result = allocator.restore(request, currentIPs);
    if ("cleared" in result) cleared.set(request.key, result.cleared);
    else outcomes.set(request.key, { key: request.key, ...result.allocation, cleared: undefined, failure: result.failure });
  }
  for (const { request } of services) {
    if (outcomes.has(request.key)) continue;
    const result = allocator.allocate(request);
    const base = { key: request.key, cleared: cleared.get(request.key) };
    if ("failure" in result) outcomes.set(request.key, { ...base, ips: [], pool: undefined, failure: result.failure });
    else outcomes.set(request.key, { ...base, ...result.allocation, failure: undefined });
  }
  return { outcomes: services.map(({ request }) => outcomes.get(request.key) as ServiceOutcome), usage: allocator.usage() };
}
