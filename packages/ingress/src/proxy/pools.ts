import { Pool } from "undici";
import type { Endpoint, HostRoutes, PathNode, RouteTable } from "../router/table.ts";

export interface PoolOptions {
  connectTimeout: number;
  readTimeout: number;
  keepAliveTimeout: number;
  /** connections per endpoint; null = unlimited */
  connections: number | null;
}

export const originOf = (e: Endpoint): string => (e.host.includes(":") ? `http://[${e.host}]:${e.port}` : `http://${e.host}:${e.port}`);

/**
 * One keep-alive undici Pool per endpoint, shared by every table that routes to it. When a table stops
 * naming an endpoint its pool is closed, which lets requests already on it finish.
 */
export function createPools(options: PoolOptions) {
  const pools = new Map<string, Pool>();
  return {
    get(endpoint: Endpoint): Pool {
      const origin = originOf(endpoint);
      let pool = pools.get(origin);
      if (pool === undefined) {
        pool = new Pool(origin, {
          connections: options.connections,
          keepAliveTimeout: options.keepAliveTimeout,
          headersTimeout: options.readTimeout,
          bodyTimeout: options.readTimeout,
          connect: { timeout: options.connectTimeout },
        });
        pools.set(origin, pool);
      }
      return pool;
    },
    /** Closes the pools of endpoints the new table no longer routes to. */
    retain(table: RouteTable): void {
      const live = endpointOrigins(table);
      for (const [origin, pool] of pools) {
        if (live.has(origin)) continue;
        pools.delete(origin);
        pool.close().catch(() => {});
      }
    },
    async close(): Promise<void> {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((p) => p.destroy().catch(() => {})));
    },
    get size() {
      return pools.size;
    },
  };
}

export type Pools = ReturnType<typeof createPools>;

function endpointOrigins(table: RouteTable): Set<string> {
  const out = new Set<string>();
  const addNode = (node: PathNode) => {
    for (const e of node.route?.backend.endpoints ?? []) out.add(originOf(e));
    for (const child of node.children.values()) addNode(child);
  };
  const addHost = (rules: HostRoutes | null) => {
    if (rules === null) return;
    for (const route of rules.exact.values()) for (const e of route.backend.endpoints) out.add(originOf(e));
    addNode(rules.prefix);
  };
  for (const rules of table.exactHosts.values()) addHost(rules);
  for (const rules of table.wildcardHosts.values()) addHost(rules);
  addHost(table.anyHost);
  for (const e of table.defaultRoute?.backend.endpoints ?? []) out.add(originOf(e));
  return out;
}
