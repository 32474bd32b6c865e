// Custom error pages: custom-http-errors (and the controller ConfigMap's custom-http-errors) and default-backend,
// the Service (in the Ingress's namespace) that answers them, and answers for a Service without endpoints.
import type { ErrorsPolicy } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

/** A Service name (DNS-1035 label). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Reads: custom-http-errors, default-backend. */
export const readErrors: PolicyReader = (read) => {
  let codes: readonly number[] = read.context.globals.customHttpErrors;
  const text = read.value("custom-http-errors");
  if (text !== undefined) {
    const parts = text.split(",").map((c) => c.trim()).filter((c) => c !== "");
    const bad = parts.find((c) => !/^[45]\d\d$/.test(c));
    if (bad !== undefined) read.invalid("custom-http-errors", `"${bad}" is not a 4xx or 5xx status code`);
    else codes = Object.freeze([...new Set(parts.map(Number))].sort((a, b) => a - b));
  }
  let defaultBackend: string | null = null;
  const service = read.value("default-backend");
  if (service !== undefined && service !== "") {
    if (SERVICE_NAME.test(service)) defaultBackend = service;
    else read.invalid("default-backend", `"${service}" is not a Service name (the Service must be in the Ingress's namespace)`);
  }
  if (codes.length > 0 && defaultBackend === null && text !== undefined) {
    read.differs("custom-http-errors", "without default-backend there is no error backend (Bollard has no controller-wide one): the upstream's answer passes unchanged");
  }
  if (codes.length === 0 && defaultBackend === null) return {};
  const policy: ErrorsPolicy = Object.freeze({ codes, defaultBackend });
  return { errors: policy };
};
