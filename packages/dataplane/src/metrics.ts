// The native plane's counters and histograms in a prom-client registry, under the metric names and labels
// dashboards and alerts use (test/parity.test.ts holds the table). They are read at each scrape (a collect
// callback, or a metric whose `get` reads them); no JavaScript runs per request.
import { DURATION_BUCKETS } from "@bollard/ingress";
import { Counter, Gauge, type Metric, type MetricType, type MetricObjectWithValues, type MetricValueWithName, type Registry } from "prom-client";
import type { DataPlane } from "./data-plane.ts";
import type { RouteCount } from "./native.ts";

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
      for (const { ingress, service, responses, clientGone } of plane.routeCounters()) {
        responses.forEach((n, i) => {
          if (n > 0) this.inc({ ingress, service, status: CLASSES[i] }, n);
        });
        // a client gone before the answer ended: 499, as nginx counts it
        if (clientGone > 0) this.inc({ ingress, service, status: "499" }, clientGone);
      }
    },
  });
  registerNativeHistogram(registry, {
    name: "bollard_ingress_request_duration_seconds",
    help: "Time from request to the end of the response, by Ingress.",
    labelNames: ["ingress"],
    read: () => plane.routeCounters().map((r) => ({ labels: { ingress: r.ingress }, counts: r.durationCounts, sum: r.durationSum })),
  });
  registerNativeHistogram(registry, {
    name: "bollard_ingress_upstream_response_seconds",
    help: "Time from sending upstream to the upstream's response headers, by Ingress and Service.",
    labelNames: ["ingress", "service"],
    read: () => plane.routeCounters().map((r: RouteCount) => ({ labels: { ingress: r.ingress, service: r.service }, counts: r.upstreamCounts, sum: r.upstreamSum })),
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

/** One series as the native side keeps it: counts per bucket of DURATION_BUCKETS and a last one past them. */
interface NativeSeries {
  labels: Record<string, string>;
  counts: number[];
  sum: number;
}

/**
 * A histogram whose buckets are counted natively: prom-client's Histogram can only be fed observations, so this
 * is a metric of its own that the registry asks for its values at each scrape (`get`), in the exposition
 * prom-client writes for a Histogram. Series with the same labels (duration by Ingress sums its Services) are
 * added up.
 */
function registerNativeHistogram(registry: Registry, spec: { name: string; help: string; labelNames: string[]; read: () => NativeSeries[] }): void {
  const metric = {
    name: spec.name,
    help: spec.help,
    type: "histogram",
    aggregator: "sum",
    labelNames: spec.labelNames,
    reset() {},
    get(): MetricObjectWithValues<MetricValueWithName<string>> {
      const merged = new Map<string, NativeSeries>();
      for (const series of spec.read()) {
        const key = JSON.stringify(spec.labelNames.map((n) => series.labels[n]));
        const seen = merged.get(key);
        if (seen === undefined) merged.set(key, { labels: series.labels, counts: [...series.counts], sum: series.sum });
        else {
          series.counts.forEach((n, i) => {
            seen.counts[i] = (seen.counts[i] ?? 0) + n;
          });
          seen.sum += series.sum;
        }
      }
      const values: MetricValueWithName<string>[] = [];
      for (const { labels, counts, sum } of merged.values()) {
        const total = counts.reduce((a, b) => a + b, 0);
        if (total === 0) continue; // (as prom-client: a series exists once observed)
        let cumulative = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += counts[i] ?? 0;
          values.push({ metricName: `${spec.name}_bucket`, labels: { ...labels, le }, value: cumulative });
        });
        values.push({ metricName: `${spec.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: total });
        values.push({ metricName: `${spec.name}_sum`, labels, value: sum });
        values.push({ metricName: `${spec.name}_count`, labels, value: total });
      }
      return { name: spec.name, help: spec.help, type: "histogram" as unknown as MetricType, aggregator: "sum", values } as unknown as MetricObjectWithValues<MetricValueWithName<string>>;
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}
