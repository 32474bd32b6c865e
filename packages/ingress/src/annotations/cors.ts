// CORS: preflight answers and response headers.
import type { CorsPolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";

const CORS_OPTIONS = ["cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-expose-headers", "cors-allow-credentials", "cors-max-age"];

// What ingress-nginx accepts in each list (its annotation validators), so that every value is a valid header value.
const METHODS = /^[A-Za-z]+(\s*,\s*[A-Za-z]+)*$/;
const HEADERS = /^[A-Za-z0-9_-]+(\s*,\s*[A-Za-z0-9_-]+)*$/;
const EXPOSE = /^([A-Za-z0-9_-]+|\*)(\s*,\s*([A-Za-z0-9_-]+|\*))*$/;
/** scheme://host[:port], the host's first label may be `*` (one label of letters, digits and dashes) */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/i;

/**
 * The allowed origins: `*` alone when the list has it (or names nothing, as ingress-nginx), else the origins that
 * are valid; the others are reported and left out.
 */
function readOrigins(read: AnnotationReader, value: string): string[] {
  const entries = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (entries.length === 0 || entries.includes("*")) return ["*"];
  const bad = entries.filter((o) => !ORIGIN.test(o));
  if (bad.length > 0) {
    const none = bad.length === entries.length ? "; no origin is allowed" : "";
    read.invalid("cors-allow-origin", `${bad.map((o) => `"${o}"`).join(", ")} ${bad.length === 1 ? "is not an origin" : "are not origins"} (scheme://host[:port], the host may start with "*."); left out${none}`);
  }
  return entries.filter((o) => ORIGIN.test(o));
}

function readList(read: AnnotationReader, name: string, pattern: RegExp, fallback: string): string {
  const value = read.value(name);
  if (value === undefined) return fallback;
  if (value === "" && name === "cors-expose-headers") return "";
  if (!pattern.test(value)) {
    read.invalid(name, `"${value}" is not a comma-separated list of ${name === "cors-allow-methods" ? "methods" : "header names"}; "${fallback}" is used`);
    return fallback;
  }
  return value;
}

/** Reads: enable-cors, cors-*. */
export const readCors: PolicyReader = (read) => {
  const enabled = read.bool("enable-cors", false);
  if (!enabled) {
    for (const name of CORS_OPTIONS) if (read.has(name)) read.differs(name, 'no effect without enable-cors: "true" (as in ingress-nginx)');
    return {};
  }
  const defaults = read.context.globals.cors;
  const cors: CorsPolicy = Object.freeze({
    allowOrigins: Object.freeze(readOrigins(read, read.value("cors-allow-origin") ?? defaults.allowOrigin)),
    allowMethods: readList(read, "cors-allow-methods", METHODS, defaults.allowMethods),
    allowHeaders: readList(read, "cors-allow-headers", HEADERS, defaults.allowHeaders),
    exposeHeaders: readList(read, "cors-expose-headers", EXPOSE, defaults.exposeHeaders),
    allowCredentials: read.bool("cors-allow-credentials", defaults.allowCredentials),
    maxAge: read.int("cors-max-age", defaults.maxAge, 0, 2_147_483_647),
  });
  return { cors };
};
