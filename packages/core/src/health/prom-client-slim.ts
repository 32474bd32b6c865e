// Imported by @bollard/core's index before anything that loads prom-client: prom-client's process CPU metric
// requires @opentelemetry/api at load, for exemplars only; it gets ./otel-on-demand.cjs instead.
import { registerHooks } from "node:module";

const onDemand = new URL("./otel-on-demand.cjs", import.meta.url).href;
registerHooks({
  resolve(specifier, context, next) {
    if (specifier === "@opentelemetry/api" && context.parentURL?.endsWith("/prom-client/lib/metrics/processCpuTotal.js")) return { url: onDemand, format: "commonjs", shortCircuit: true };
    return next(specifier, context);
  },
});
