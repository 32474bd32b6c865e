import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { refKey } from "../model/objects.ts";
import type { ProxyObserver } from "../proxy/server.ts";

/** Request duration buckets (seconds) of both data planes. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface IngressMetrics {
  configurationApplied(ok: boolean, diagnostics: number): void;
}

/** The data plane's metrics on `registry` (in each worker process); the result is the proxy's observer. */
export function createProxyMetrics(registry: Registry): ProxyObserver {
  const registers = [registry];
  const requests = new Counter({
    name: "bollard_ingress_requests_total",
    help: "Requests answered, by Ingress, backend Service and status class (404s have no Ingress).",
    labelNames: ["ingress", "service", "status"],
    registers,
  });
  const duration = new Histogram({
    name: "bollard_ingress_request_duration_seconds",
    help: "Time from request to the end of the response, by Ingress.",
    labelNames: ["ingress"],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const upstream = new Histogram({
    name: "bollard_ingress_upstream_response_seconds",
    help: "Time from sending upstream to the upstream's response headers, by Ingress and Service.",
    labelNames: ["ingress", "service"],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const connections = new Gauge({ name: "bollard_ingress_active_connections", help: "Open client connections (HTTP and HTTPS).", registers });
  const swaps = new Counter({ name: "bollard_ingress_route_table_swaps_total", help: "Route tables swapped in.", registers });
  return {
    requestFinished({ route, status, seconds, upstreamSeconds }) {
      const ingress = route === null ? "" : refKey(route.ingress);
      const service = route?.backend.service ?? "";
      requests.inc({ ingress, service, status: status === 499 ? "499" : `${Math.floor(status / 100)}xx` });
      duration.observe({ ingress }, seconds);
      if (upstreamSeconds !== null) upstream.observe({ ingress, service }, upstreamSeconds);
    },
    connectionOpened: () => connections.inc(),
    connectionClosed: () => connections.dec(),
    tableSwapped: () => swaps.inc(),
  };
}

/** The control plane's metrics on `registry` (in the process that watches the API). */
export function createConfigMetrics(registry: Registry): IngressMetrics {
  const registers = [registry];
  const lastSuccess = new Gauge({
    name: "bollard_ingress_config_last_reload_successful_timestamp_seconds",
    help: "When a route table was last built from the API's objects.",
    registers,
  });
  const problems = new Gauge({ name: "bollard_ingress_config_problems", help: "Errors and warnings of the current configuration (also sent as Events).", registers });

  return {
    configurationApplied(ok, diagnostics) {
      if (ok) lastSuccess.setToCurrentTime();
      problems.set(diagnostics);
    },
  };
}
