import { Counter, Gauge, type Registry } from "prom-client";
import type { PoolUsage } from "../allocator/types.ts";

export type ControllerMetrics = ReturnType<typeof createControllerMetrics>;

export function createControllerMetrics(registry: Registry) {
  const registers = [registry];
  const addressesTotal = new Gauge({
    name: "bollard_controller_addresses_total",
    help: "Addresses in each pool by family (less .0/.255 when the pool avoids them); a /64 is 2^64.",
    labelNames: ["pool", "family"] as const,
    registers,
  });
  const addressesInUse = new Gauge({
    name: "bollard_controller_addresses_in_use",
    help: "Distinct addresses of each pool held by Services, by family.",
    labelNames: ["pool", "family"] as const,
    registers,
  });
  const allocations = new Counter({
    name: "bollard_controller_allocations_total",
    help: "Addresses written to Service statuses, by pool.",
    labelNames: ["pool"] as const,
    registers,
  });
  const failures = new Counter({
    name: "bollard_controller_allocation_failures_total",
    help: "Services that could not get an address, by reason (counted when the reason changes).",
    labelNames: ["reason"] as const,
    registers,
  });
  const configLoaded = new Gauge({
    name: "bollard_controller_config_loaded",
    help: "1 when a valid pool configuration is in use.",
    registers,
  });
  const configStale = new Gauge({
    name: "bollard_controller_config_stale",
    help: "1 when the current pool configuration is invalid and the last good one (if any) is still in use.",
    registers,
  });
  const leader = new Gauge({ name: "bollard_controller_leader", help: "1 while this replica holds the lease.", registers });
  configLoaded.set(0);
  configStale.set(0);
  leader.set(0);

  return {
    allocations,
    failures,
    configLoaded,
    configStale,
    leader,
    setUsage(usage: PoolUsage[]): void {
      addressesTotal.reset();
      addressesInUse.reset();
      for (const pool of usage) {
        addressesTotal.set({ pool: pool.pool, family: "IPv4" }, Number(pool.totalIPv4));
        addressesTotal.set({ pool: pool.pool, family: "IPv6" }, Number(pool.totalIPv6));
        addressesInUse.set({ pool: pool.pool, family: "IPv4" }, pool.assignedIPv4);
        addressesInUse.set({ pool: pool.pool, family: "IPv6" }, pool.assignedIPv6);
      }
    },
  };
}
