// Path and host normalisation shared by the compiler and the matcher, so both agree on what "the same" is.

/** Path elements split on `/`; empty elements (leading, trailing, doubled slashes) do not count. */
export function pathSegments(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

/** The canonical form of a Prefix path: `/a/b/` and `/a//b` are both `/a/b`. */
export function canonicalPrefix(path: string): string {
  return `/${pathSegments(path).join("/")}`;
}

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A rule host as the Ingress API allows it: a DNS name, optionally with `*` as its whole first label. */
export function isValidRuleHost(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.split(".");
  return labels.every((label, i) => (i === 0 && label === "*" && labels.length > 1) || HOST_LABEL.test(label));
}

/**
 * The host part of a `Host` header (or URL authority): lower case, without port or trailing dot.
 * IPv6 literals keep their brackets.
 */
export function requestHost(header: string | undefined): string {
  if (header === undefined || header === "") return "";
  let host = header;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf("]");
    host = end < 0 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(":");
    if (colon >= 0) host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  return host.toLowerCase();
}
