// Response headers: custom-headers (from a ConfigMap, literal values) and HSTS.
import { DEFAULT_POLICY, type HeadersPolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";

/** A header name as RFC 9110 allows it (a token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII and inner spaces: no control characters, nothing a client could read as a second line. */
const HEADER_VALUE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;
/** Set by the data plane itself, or framing: a ConfigMap does not replace them. */
const RESERVED = new Set(["connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer", "proxy-connection", "host"]);

/** Reads: custom-headers, and the hsts global (sent on HTTPS answers of hosts with their own certificate). */
export const readHeaders: PolicyReader = (read) => {
  const response = readCustomHeaders(read);
  const hsts = read.context.globals.hsts;
  const defaults = DEFAULT_POLICY.headers;
  if (response.length === 0) {
    if (hsts === null) return { headers: null };
    if (hsts === defaults?.hsts) return {};
  }
  return { headers: Object.freeze({ response, hsts }) };
};

function readCustomHeaders(read: AnnotationReader): HeadersPolicy["response"] {
  const ref = read.value("custom-headers");
  if (ref === undefined || ref === "") return Object.freeze([]);
  if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(ref)) {
    read.invalid("custom-headers", 'names a ConfigMap as "name" or "namespace/name"');
    return Object.freeze([]);
  }
  const configMap = read.context.configMap(ref);
  if (configMap === undefined) {
    read.invalid("custom-headers", `ConfigMap ${ref.includes("/") ? ref : `${read.context.namespace}/${ref}`} not found; no headers are added`);
    return Object.freeze([]);
  }
  const entries = Object.entries(configMap.data ?? {}).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const bad: string[] = [];
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name) || RESERVED.has(name.toLowerCase())) bad.push(`"${name}" is not a header name a response may be given`);
    else if (!HEADER_VALUE.test(value)) bad.push(`the value of ${name} is not visible ASCII (no control characters, no leading or trailing space)`);
  }
  if (bad.length > 0) {
    read.invalid("custom-headers", `${bad.join("; ")}; no headers are added`);
    return Object.freeze([]);
  }
  return Object.freeze(entries.map(([n, v]) => Object.freeze([n, v] as const)));
}
