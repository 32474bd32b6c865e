// The native plane's counters in a prom-client registry, under the Node plane's metric names. They are read at
// each scrape (a collect callback); no JavaScript runs per request.
import { Counter, Gauge, type Registry } from "prom-client";
import type { DataPlane } from "./data-plane.ts";

const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

export function registerDataPlaneMetrics(plane: DataPlane, registry: Registry): void {
  const registers = [registry];
  new Counter({
    name: "bollard_ingress_requests_total",
    help: "Requests answered, by Ingress, backend Service and status class (404s have no Ingress).",
    labelNames: ["ingress", "service", "status"],
    registers,
    collect() {
      this.reset();
      for (const { ingress, service, responses } of plane.routeCounters()) {
        responses.forEach((n, i) => {
          if (n > 0) this.inc({ ingress, service, status: CLASSES[i] }, n);
        });
      }
    },
  });
  new Gauge({
    name: "bollard_ingress_active_connections",
    help: "Open client connections (HTTP and HTTPS).",
    registers,
    collect() {
      this.set(plane.openConnections());
    },
  });
  new Counter({
    name: "bollard_ingress_route_table_swaps_total",
    help: "Route tables swapped in.",
    registers,
    collect() {
      this.reset();
      const swaps = plane.counters().tableSwaps;
      if (swaps > 0) this.inc(swaps);
    },
  });
}
