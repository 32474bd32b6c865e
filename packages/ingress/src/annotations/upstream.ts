// How the upstream is reached: protocol, TLS, timeouts, retries, body limits.
import { secretValue } from "../tls/key-pair.ts";
import { NEXT_UPSTREAM_CONDITIONS, type NextUpstreamCondition, type Template, type UpstreamPolicy, type UpstreamTlsPolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";
import { isTemplateError, parseTemplate } from "./template.ts";

const PROTOCOLS = ["HTTP", "HTTPS", "AUTO_HTTP", "GRPC", "GRPCS"] as const;
type Protocol = (typeof PROTOCOLS)[number];

/** ingress-nginx's defaults (its ConfigMap's `proxy-next-upstream` and `proxy-next-upstream-tries`). */
const DEFAULT_NEXT_UPSTREAM: readonly NextUpstreamCondition[] = Object.freeze(["error", "timeout"]);
const DEFAULT_TRIES = 3;

/** The name checked on the endpoint's certificate when `proxy-ssl-name` is not given: the Service's DNS name. */
const DEFAULT_SSL_NAME: Template = Object.freeze([{ variable: "service_name" }, { text: "." }, { variable: "namespace" }, { text: ".svc" }]);

/** A year: the longest timeout taken (nginx takes longer ones, but no proxy waits that long on purpose). */
const MAX_SECONDS = 365 * 24 * 3600;

const STREAMED = "responses are streamed to the client as they arrive; nothing is buffered to memory or disk beyond one read";

/** An nginx size (`8m`, `1k`, `512`, `1g`; case-insensitive) in bytes; undefined when it is not one. */
export function parseSize(value: string): number | undefined {
  const m = /^(\d+)([kmg]?)$/i.exec(value);
  if (m === null) return undefined;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase()] ?? 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Whole seconds (as ingress-nginx takes them: `proxy_*_timeout {{ value }}s`) in milliseconds. */
function seconds(read: AnnotationReader, name: string, fallback: number | null, min: number): number | null {
  const v = read.value(name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > MAX_SECONDS) {
    const hint = /^\d+s$/.test(v) ? ` (ingress-nginx takes whole seconds without a unit: "${v.slice(0, -1)}")` : "";
    read.invalid(name, `"${v}" is not a number of seconds in ${min}..${MAX_SECONDS}${hint}; ${fallback === null ? "the flag's value" : `${fallback} ms`} is used`);
    return fallback;
  }
  return Number(v) * 1000;
}

function size(read: AnnotationReader, name: string, fallback: number | null): number | null {
  const v = read.value(name);
  if (v === undefined) return fallback;
  const n = parseSize(v);
  if (n === undefined) {
    read.invalid(name, `"${v}" is not an nginx size (a number of bytes, or with k, m or g); ${fallback === null ? "the flag's value" : fallback} is used`);
    return fallback;
  }
  return n;
}

/** nginx's `on`/`off` (these annotations take those words; "true"/"false" are taken too). */
function onOff(read: AnnotationReader, name: string, fallback: boolean): boolean {
  const v = read.value(name)?.toLowerCase();
  if (v === undefined) return fallback;
  if (v === "on" || v === "true") return true;
  if (v === "off" || v === "false") return false;
  read.invalid(name, `"${v}" is neither "on" nor "off"; ${fallback ? "on" : "off"} is used`);
  return fallback;
}

function readProtocol(read: AnnotationReader): Protocol {
  const v = read.value("backend-protocol");
  if (v === undefined) return "HTTP";
  const upper = v.toUpperCase();
  if ((PROTOCOLS as readonly string[]).includes(upper)) return upper as Protocol;
  if (upper === "FCGI") {
    read.invalid("backend-protocol", "FCGI is not supported: the data plane speaks HTTP/1.1 and HTTP/2 to endpoints, not FastCGI; HTTP is used");
  } else {
    read.invalid("backend-protocol", `"${v}" is not one of ${PROTOCOLS.join(", ")}; HTTP is used`);
  }
  return "HTTP";
}

function readNextUpstream(read: AnnotationReader): readonly NextUpstreamCondition[] {
  const v = read.value("proxy-next-upstream");
  if (v === undefined) return DEFAULT_NEXT_UPSTREAM;
  const words = v.split(/\s+/).filter((w) => w !== "");
  if (words.length === 1 && words[0] === "off") return Object.freeze([]);
  const unknown = words.filter((w) => !(NEXT_UPSTREAM_CONDITIONS as readonly string[]).includes(w));
  if (words.length === 0 || unknown.length > 0) {
    const what = words.length === 0 ? "no condition" : unknown.map((w) => `"${w}"`).join(", ");
    read.invalid("proxy-next-upstream", `${what}: the conditions are ${NEXT_UPSTREAM_CONDITIONS.join(", ")}, or off alone; "error timeout" is used`);
    return DEFAULT_NEXT_UPSTREAM;
  }
  return Object.freeze([...new Set(words as NextUpstreamCondition[])]);
}

const SSL_ANNOTATIONS = ["proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-verify-depth", "proxy-ssl-name", "proxy-ssl-server-name", "proxy-ssl-protocols"];

function readTls(read: AnnotationReader, protocol: Protocol): UpstreamTlsPolicy | null {
  if (protocol === "HTTP" || protocol === "GRPC") {
    for (const name of SSL_ANNOTATIONS) {
      if (read.has(name)) read.differs(name, `no effect: backend-protocol is ${protocol}, which does not use TLS to the endpoint`);
    }
    return null;
  }
  let ca: string | null = null;
  let cert: string | null = null;
  let key: string | null = null;
  const ref = read.value("proxy-ssl-secret");
  if (ref !== undefined) {
    const secret = read.context.secret(ref);
    if (secret === undefined) {
      read.invalid("proxy-ssl-secret", `Secret "${ref}" does not exist; no CA and no client certificate are used`);
    } else {
      const pem = (field: string) => {
        const text = secretValue(secret, field);
        return text === undefined || text.trim() === "" ? null : text;
      };
      ca = pem("ca.crt");
      cert = pem("tls.crt");
      key = pem("tls.key");
      if (ca !== null && !ca.includes("-----BEGIN CERTIFICATE-----")) {
        read.invalid("proxy-ssl-secret", `Secret "${ref}": ca.crt is not a PEM certificate; no CA is used`);
        ca = null;
      }
      if ((cert === null) !== (key === null)) {
        read.invalid("proxy-ssl-secret", `Secret "${ref}" has ${cert === null ? "tls.key without tls.crt" : "tls.crt without tls.key"}; no client certificate is presented`);
        cert = null;
        key = null;
      }
    }
  }
  const verify = onOff(read, "proxy-ssl-verify", false);
  if (verify && ca === null) {
    read.differs("proxy-ssl-verify", "no ca.crt in proxy-ssl-secret: the system roots are not used, so every endpoint certificate is refused (502)");
  }
  read.int("proxy-ssl-verify-depth", 1, 0, 100);
  if (read.has("proxy-ssl-verify-depth")) read.differs("proxy-ssl-verify-depth", "the chain is checked up to ca.crt whatever its length");
  let name: Template = DEFAULT_SSL_NAME;
  const nameValue = read.value("proxy-ssl-name");
  if (nameValue !== undefined) {
    const parsed = parseTemplate(nameValue);
    if (isTemplateError(parsed) || parsed.length === 0) {
      read.invalid("proxy-ssl-name", `${isTemplateError(parsed) ? parsed.error : "empty"}; $service_name.$namespace.svc is used`);
    } else {
      name = parsed;
    }
  }
  const serverName = onOff(read, "proxy-ssl-server-name", false);
  const protocols = read.value("proxy-ssl-protocols");
  if (protocols !== undefined) {
    read.differs("proxy-ssl-protocols", "TLSv1.2 and TLSv1.3 are offered whatever is listed (older versions never are)");
  }
  return Object.freeze({ ca, cert, key, verify, name, serverName });
}

/** Reads: backend-protocol, proxy-ssl-*, proxy-*-timeout, proxy-next-upstream*, proxy-http-version, proxy-body-size, client-body-buffer-size, proxy-buffering knobs. */
export const readUpstream: PolicyReader = (read) => {
  const globals = read.context.globals;
  const protocol = readProtocol(read);
  const tls = readTls(read, protocol);
  const connectTimeoutMs = seconds(read, "proxy-connect-timeout", globals.proxyConnectTimeoutMs, 1);
  const readTimeoutMs = seconds(read, "proxy-read-timeout", globals.proxyReadTimeoutMs, 1);
  if (read.has("proxy-send-timeout")) {
    seconds(read, "proxy-send-timeout", null, 1);
    read.differs("proxy-send-timeout", "not timed on its own: the request must be sent and answered within proxy-read-timeout");
  }
  const nextUpstream = readNextUpstream(read);
  const nextUpstreamTries = read.int("proxy-next-upstream-tries", DEFAULT_TRIES, 0, 1000);
  const nextUpstreamTimeoutMs = seconds(read, "proxy-next-upstream-timeout", 0, 0) ?? 0;
  const version = read.value("proxy-http-version");
  let httpVersion: "1.0" | "1.1" = "1.1";
  if (version === "1.0" || version === "1.1") httpVersion = version;
  else if (version !== undefined) read.invalid("proxy-http-version", `"${version}" is neither "1.0" nor "1.1"; 1.1 is used`);
  const maxBodySize = size(read, "proxy-body-size", globals.proxyBodySize);
  let bodyBufferSize = size(read, "client-body-buffer-size", null);
  if (!onOff(read, "proxy-request-buffering", true)) bodyBufferSize = 0;
  else if (read.has("proxy-request-buffering")) {
    read.differs("proxy-request-buffering", "bodies up to client-body-buffer-size are read whole before forwarding; longer ones stream rather than go to a temporary file");
  }
  if (read.has("proxy-buffering")) {
    onOff(read, "proxy-buffering", false);
    read.differs("proxy-buffering", STREAMED);
  }
  for (const name of ["proxy-buffer-size", "proxy-max-temp-file-size"]) {
    if (!read.has(name)) continue;
    size(read, name, null);
    read.differs(name, STREAMED);
  }
  if (read.has("proxy-buffers-number")) {
    read.int("proxy-buffers-number", 4, 1, 1024);
    read.differs("proxy-buffers-number", STREAMED);
  }
  const policy: UpstreamPolicy = {
    protocol,
    tls,
    connectTimeoutMs,
    readTimeoutMs,
    nextUpstream,
    nextUpstreamTries,
    nextUpstreamTimeoutMs,
    httpVersion,
    maxBodySize,
    bodyBufferSize,
  };
  // A route asking nothing of its own keeps the data plane's defaults (and its fast path): no policy at all.
  const asksNothing =
    protocol === "HTTP" &&
    connectTimeoutMs === null &&
    readTimeoutMs === null &&
    nextUpstream.join(" ") === DEFAULT_NEXT_UPSTREAM.join(" ") &&
    nextUpstreamTries === DEFAULT_TRIES &&
    nextUpstreamTimeoutMs === 0 &&
    httpVersion === "1.1" &&
    maxBodySize === null &&
    bodyBufferSize === null;
  return asksNothing ? {} : { upstream: Object.freeze(policy) };
};
