// Canary Ingresses: `canary: "true"` makes an Ingress's backend an alternative on the main Ingress's routes of
// the same host and path (the compiler attaches it), chosen per request by header, then cookie, then weight.
import type { CanaryRule } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

const RULE_ANNOTATIONS = ["canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie", "canary-weight", "canary-weight-total"];

/** an RFC 9110 field name */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** an RFC 6265 cookie name */
const COOKIE_NAME = HEADER_NAME;

/**
 * The annotations of a canary Ingress that act (ingress-nginx: everything else comes from the main Ingress).
 * The compiler marks the canary Ingress's other annotations as having no effect.
 */
export function actsOnCanary(name: string): boolean {
  return (
    name === "canary" ||
    name.startsWith("canary-") ||
    name === "affinity" ||
    name.startsWith("affinity-") ||
    name.startsWith("session-cookie-") ||
    name.startsWith("upstream-hash-by") ||
    name === "service-upstream" ||
    name === "load-balance"
  );
}

/** Reads: canary, canary-by-header, canary-by-header-value, canary-by-header-pattern, canary-by-cookie, canary-weight, canary-weight-total. */
export const readCanary: PolicyReader = (read) => {
  const on = read.bool("canary", false);
  if (!on) {
    for (const name of RULE_ANNOTATIONS) if (read.has(name)) read.differs(name, 'has no effect without canary: "true"');
    return {};
  }
  let header = read.value("canary-by-header") || null;
  if (header !== null && !HEADER_NAME.test(header)) {
    read.invalid("canary-by-header", `"${header}" is not a header name; the canary is not chosen by header`);
    header = null;
  }
  let headerValue = read.value("canary-by-header-value") || null;
  if (headerValue !== null && !/^[\x20-\x7e\t]*$/.test(headerValue)) {
    read.invalid("canary-by-header-value", "holds characters a header value cannot; the value is not used");
    headerValue = null;
  }
  let headerPattern = read.value("canary-by-header-pattern") || null;
  if (headerPattern !== null) {
    const problem = patternProblem(headerPattern);
    if (problem !== null) {
      read.invalid("canary-by-header-pattern", `/${headerPattern}/ ${problem}; the pattern is not used`);
      headerPattern = null;
    } else if (headerValue !== null) {
      read.differs("canary-by-header-pattern", "canary-by-header-value is set, which takes precedence (as in ingress-nginx)");
      headerPattern = null;
    }
  }
  if (header === null) {
    for (const name of ["canary-by-header-value", "canary-by-header-pattern"]) if (read.has(name)) read.differs(name, "has no effect without a valid canary-by-header");
  }
  let cookie = read.value("canary-by-cookie") || null;
  if (cookie !== null && !COOKIE_NAME.test(cookie)) {
    read.invalid("canary-by-cookie", `"${cookie}" is not a cookie name; the canary is not chosen by cookie`);
    cookie = null;
  }
  const weightTotal = read.int("canary-weight-total", 100, 1, 1_000_000_000);
  const weight = read.int("canary-weight", 0, 0, weightTotal);
  const rule: CanaryRule = Object.freeze({ header, headerValue: header === null ? null : headerValue, headerPattern: header === null ? null : headerPattern, cookie, weight, weightTotal });
  return { canary: rule };
};

/**
 * Why a pattern cannot be used: it must compile in JavaScript and mean the same to the data plane's regex engine
 * (the `regex` crate, which has no look-around and no back-references; a pattern it refused would refuse the
 * whole snapshot), and stay small.
 */
function patternProblem(pattern: string): string | null {
  if (pattern.length > 1024) return "is longer than 1024 characters";
  try {
    new RegExp(pattern, "u");
  } catch (e) {
    return `is not a regular expression (${(e as Error).message})`;
  }
  if (/\(\?<?[=!]/.test(pattern)) return "uses look-around, which the data plane's regex engine does not have";
  if (/\\[1-9]|\\k</.test(pattern)) return "uses a back-reference, which the data plane's regex engine does not have";
  return null;
}
