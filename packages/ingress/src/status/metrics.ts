import { Gauge, type Registry } from "prom-client";

/** Request duration buckets (seconds) of the data plane's histograms (@bollard/dataplane registers them). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface IngressMetrics {
  configurationApplied(ok: boolean, diagnostics: number): void;
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
