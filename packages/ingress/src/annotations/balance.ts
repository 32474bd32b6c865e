// Which endpoint serves: cookie affinity and consistent hashing; and `service-upstream`, which makes the Service's
// ClusterIP the only endpoint (the compiler applies it, as only it sees the Service).
import type { AffinityPolicy, BalancePolicy, RoutePolicy, Template } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";
import { isRequestValue, isTemplateError, parseTemplate } from "./template.ts";

const COOKIE_ANNOTATIONS = [
  "affinity-mode",
  "affinity-canary-behavior",
  "session-cookie-name",
  "session-cookie-secure",
  "session-cookie-path",
  "session-cookie-domain",
  "session-cookie-samesite",
  "session-cookie-conditional-samesite-none",
  "session-cookie-max-age",
  "session-cookie-expires",
  "session-cookie-change-on-failure",
  "session-cookie-hash",
];

/** RFC 6265 cookie-name: an RFC 9110 token */
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** a cookie Path: what a cookie-av may hold (no `;`, no controls), starting with `/` */
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/;
/** a cookie Domain: a DNS name, optionally with the leading dot old browsers want */
const COOKIE_DOMAIN = /^\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** the longest cookie lifetime taken (68 years: what a 32-bit Max-Age holds) */
const MAX_SECONDS = 2 ** 31 - 1;

/** nginx variables upstream-hash-by may use beyond the template's: the same key in another spelling */
const HASH_ALIASES: Readonly<Record<string, string>> = { binary_remote_addr: "remote_addr", document_uri: "uri", is_args: "" };

/** Reads: affinity, affinity-mode, affinity-canary-behavior, session-cookie-*, upstream-hash-by*, service-upstream. */
export const readBalance: PolicyReader = (read) => {
  const affinity = readAffinity(read);
  const hashBy = readHashBy(read);
  const part: { -readonly [K in "balance" | "serviceUpstream"]?: RoutePolicy[K] } = {};
  if (affinity !== null || hashBy !== null) {
    if (affinity !== null && hashBy !== null) {
      read.differs("upstream-hash-by", "affinity is set: the session cookie chooses the endpoint, the hash only for requests without a valid cookie");
    }
    part.balance = Object.freeze<BalancePolicy>({ affinity, hashBy });
  }
  if (read.bool("service-upstream", false)) part.serviceUpstream = true;
  return part;
};

function readAffinity(read: AnnotationReader): AffinityPolicy | null {
  const kind = read.value("affinity");
  if (kind === undefined || kind === "") {
    for (const name of COOKIE_ANNOTATIONS) if (read.has(name)) read.differs(name, 'has no effect without affinity: "cookie" (as in ingress-nginx)');
    return null;
  }
  if (kind !== "cookie") {
    read.invalid("affinity", `"${kind}" is not "cookie", the only affinity there is; requests are balanced without affinity`);
    for (const name of COOKIE_ANNOTATIONS) if (read.has(name)) read.differs(name, "has no effect: affinity is not in force");
    return null;
  }
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const v = read.value(name);
    if (v === undefined) return fallback;
    const found = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (found === undefined) read.invalid(name, `"${v}" is not one of ${allowed.join(", ")}; ${fallback} is used`);
    return found ?? fallback;
  };
  const checked = (name: string, pattern: RegExp, what: string): string | null => {
    const v = read.value(name);
    if (v === undefined || v === "") return null;
    if (pattern.test(v)) return v;
    read.invalid(name, `"${v}" is not ${what}; it is left out of the cookie`);
    return null;
  };
  const seconds = (name: string): number | null => {
    if (!read.has(name)) return null;
    const n = read.int(name, -1, 0, MAX_SECONDS);
    return n < 0 ? null : n;
  };

  let mode = read.value("affinity-mode");
  if (mode === "persistent-drainable") {
    read.differs("affinity-mode", "served as persistent: a session leaves its endpoint once the endpoint is no longer ready");
    mode = "persistent";
  } else {
    mode = oneOf("affinity-mode", ["balanced", "persistent"] as const, "balanced");
  }
  if (mode === "balanced") {
    // (on `affinity` when the mode is the default, so that the difference is visible somewhere)
    read.differs(read.has("affinity-mode") ? "affinity-mode" : "affinity", "balanced is served as persistent: a session stays on its endpoint while the endpoint exists (ingress-nginx moves some sessions to new endpoints when scaling up)");
  }
  let name = read.value("session-cookie-name") ?? "";
  if (name === "") name = "INGRESSCOOKIE";
  else if (!COOKIE_NAME.test(name)) {
    read.invalid("session-cookie-name", `"${name}" is not a cookie name (letters, digits and !#$%&'*+-.^_\`|~); INGRESSCOOKIE is used`);
    name = "INGRESSCOOKIE";
  }
  if (read.has("session-cookie-hash")) read.differs("session-cookie-hash", "the cookie value is always a hash of the endpoint (ingress-nginx removed this annotation)");
  return Object.freeze<AffinityPolicy>({
    name,
    mode: mode as AffinityPolicy["mode"],
    canaryBehavior: oneOf("affinity-canary-behavior", ["sticky", "legacy"] as const, "sticky"),
    secure: read.bool("session-cookie-secure", false),
    path: checked("session-cookie-path", COOKIE_PATH, "a cookie path (starting with /, without ; or control characters)"),
    domain: checked("session-cookie-domain", COOKIE_DOMAIN, "a domain name"),
    sameSite: read.has("session-cookie-samesite") ? oneOf<"None" | "Lax" | "Strict" | "">("session-cookie-samesite", ["None", "Lax", "Strict"], "") || null : null,
    conditionalSameSiteNone: read.bool("session-cookie-conditional-samesite-none", false),
    maxAge: seconds("session-cookie-max-age"),
    expires: seconds("session-cookie-expires"),
    changeOnFailure: read.bool("session-cookie-change-on-failure", false),
  });
}

function readHashBy(read: AnnotationReader): Template | null {
  for (const name of ["upstream-hash-by-subset", "upstream-hash-by-subset-size"]) {
    if (read.has(name)) read.invalid(name, "hashing to a subset of endpoints is not implemented; upstream-hash-by hashes over all of them");
  }
  const v = read.value("upstream-hash-by");
  if (v === undefined || v === "") return null;
  const spelled = v.replace(/\$(\{)?([A-Za-z_]+)(\})?/g, (whole, open: string | undefined, name: string, close: string | undefined) => {
    const alias = HASH_ALIASES[name.toLowerCase()];
    if (alias === undefined || (open !== undefined) !== (close !== undefined)) return whole;
    return alias === "" ? "" : `$${alias}`;
  });
  const template = parseTemplate(spelled);
  if (isTemplateError(template)) {
    read.invalid("upstream-hash-by", `${template.error}; requests are balanced round-robin`);
    return null;
  }
  if (!template.some(isRequestValue)) {
    read.invalid("upstream-hash-by", `"${v}" names no variable, so every request would go to one endpoint; requests are balanced round-robin`);
    return null;
  }
  if (spelled !== v) read.differs("upstream-hash-by", `read as "${spelled}" (the same key in the spelling this data plane has)`);
  return template;
}
