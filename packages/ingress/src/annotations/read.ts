// Reading an Ingress's `nginx.ingress.kubernetes.io/*` annotations into its RoutePolicy. Each area of the
// policy (redirects, access, auth…) has a reader function in this folder; they all take an AnnotationReader,
// which records what each annotation came to (supported, supported with a difference, invalid). Whatever no
// reader takes is unsupported: a Warning Event, and for a security annotation the route refuses (503) rather
// than serve unprotected.
import type { ConfigMap, Secret } from "../model/objects.ts";
import { type GlobalSettings, DEFAULT_GLOBALS } from "./globals.ts";
import { DEFAULT_POLICY, type RoutePolicy } from "./policy.ts";
import { unsupportedReason } from "./catalog.ts";

export const NGINX_ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io";

/** What one annotation came to. `supported` entries carry no message; the others say why. */
export interface AnnotationFinding {
  /** the annotation's name without prefix (`rewrite-target`) */
  readonly name: string;
  /** the full key as written on the Ingress */
  readonly key: string;
  readonly value: string;
  readonly verdict: "supported" | "different" | "invalid" | "unsupported";
  readonly message: string;
  /** it made the routes of the Ingress refuse (503) */
  readonly refuses: boolean;
}

/** What the readers may look up besides the Ingress: objects in its namespace (or `namespace/name`), globals. */
export interface AnnotationContext {
  readonly namespace: string;
  secret(ref: string): Secret | undefined;
  configMap(ref: string): ConfigMap | undefined;
  readonly globals: GlobalSettings;
  /**
   * every request the Ingress's routes serve names one of its exact rule hosts (no wildcard, no rule without host,
   * no defaultBackend): `$host` is then not the client's choice
   */
  readonly fixedHosts: boolean;
}

/** Security annotations fail closed: invalid or unsupported, the route answers 503 instead of serving. */
export function isSecurityAnnotation(name: string): boolean {
  return name.startsWith("auth-") || name.endsWith("-source-range") || name === "enable-global-auth";
}

export interface AnnotationReader {
  readonly context: AnnotationContext;
  /** the value of an annotation (trimmed), marking it read; undefined when absent */
  value(name: string): string | undefined;
  has(name: string): boolean;
  /** "true"/"false"; an absent or invalid value gives `fallback` (invalid is reported) */
  bool(name: string, fallback: boolean): boolean;
  /** an integer in [min, max]; absent or invalid gives `fallback` (invalid is reported) */
  int(name: string, fallback: number, min: number, max: number): number;
  /** reports the value as invalid (a security annotation then refuses) */
  invalid(name: string, message: string): void;
  /** records that the annotation is served with a difference from ingress-nginx */
  differs(name: string, message: string): void;
  /** marks an annotation as read without a verdict of its own (e.g. consumed together with another) */
  touch(name: string): void;
}

export interface IngressAnnotations {
  /** the annotations with our prefix, by name without prefix */
  readonly values: ReadonlyMap<string, { key: string; value: string }>;
}

/** An area reader: reads its annotations and returns its part of the policy. */
export type PolicyReader = (read: AnnotationReader) => Partial<RoutePolicy>;

/**
 * The policy of one Ingress and what each of its annotations came to. `readers` are applied in order, each
 * contributing the policy fields it owns. Pure.
 */
export function readPolicy(
  annotations: Readonly<Record<string, string>> | undefined,
  context: AnnotationContext,
  readers: readonly PolicyReader[],
  prefix: string = NGINX_ANNOTATION_PREFIX,
): { policy: RoutePolicy; findings: AnnotationFinding[] } {
  const values = new Map<string, { key: string; value: string }>();
  for (const [key, value] of Object.entries(annotations ?? {})) {
    const slash = key.indexOf("/");
    if (slash < 0 || key.slice(0, slash) !== prefix) continue;
    values.set(key.slice(slash + 1), { key, value });
  }
  const read = new Set<string>();
  const verdicts = new Map<string, { verdict: AnnotationFinding["verdict"]; message: string }>();
  const note = (name: string, verdict: "different" | "invalid", message: string) => {
    const had = verdicts.get(name);
    // an invalid verdict outranks a difference; the first message of a kind is kept
    if (had === undefined || (had.verdict === "different" && verdict === "invalid")) verdicts.set(name, { verdict, message });
  };
  const reader: AnnotationReader = {
    context,
    value(name) {
      read.add(name);
      return values.get(name)?.value.trim();
    },
    has: (name) => values.has(name),
    bool(name, fallback) {
      const v = reader.value(name);
      if (v === undefined) return fallback;
      if (v === "true") return true;
      if (v === "false") return false;
      note(name, "invalid", `"${v}" is neither "true" nor "false"; ${fallback} is used`);
      return fallback;
    },
    int(name, fallback, min, max) {
      const v = reader.value(name);
      if (v === undefined) return fallback;
      const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        note(name, "invalid", `"${v}" is not an integer in ${min}..${max}; ${fallback} is used`);
        return fallback;
      }
      return n;
    },
    invalid: (name, message) => {
      read.add(name);
      note(name, "invalid", message);
    },
    differs: (name, message) => {
      read.add(name);
      note(name, "different", message);
    },
    touch: (name) => {
      read.add(name);
    },
  };

  let policy: RoutePolicy = DEFAULT_POLICY;
  for (const r of readers) {
    const part = r(reader);
    if (Object.keys(part).length > 0) policy = { ...policy, ...part };
  }

  const findings: AnnotationFinding[] = [];
  const refusals: string[] = [];
  for (const [name, { key, value }] of [...values].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    let verdict: AnnotationFinding["verdict"];
    let message: string;
    if (!read.has(name)) {
      verdict = "unsupported";
      message = unsupportedReason(name);
    } else {
      const v = verdicts.get(name);
      verdict = v?.verdict ?? "supported";
      message = v?.message ?? "";
    }
    const refuses = (verdict === "invalid" || verdict === "unsupported") && isSecurityAnnotation(name);
    if (refuses) refusals.push(`${key}: ${message}`);
    findings.push(Object.freeze({ name, key, value, verdict, message, refuses }));
  }
  if (refusals.length > 0) policy = { ...policy, refuse: Object.freeze({ status: 503, reason: refusals.join("; ") }) };
  return { policy: Object.freeze(policy), findings };
}

export { DEFAULT_GLOBALS };
