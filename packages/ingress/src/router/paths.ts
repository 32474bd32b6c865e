// Path and host normalisation shared by the compiler and the matcher, so both agree on what "the same" is.

/** Path elements split on `/`; empty elements (leading, trailing, doubled slashes) do not count. */
export function pathSegments(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

/**
 * The path a request is matched on, as nginx matches its locations: percent-escapes decoded once (`%2F` too,
 * which then separates elements; `%252F` stays the text `%2F`), `.` and `..` elements resolved, runs of `/`
 * merged. Whatever spelling a client picks, the route is the one its plain path gets, so `/%61dmin` and
 * `/public/%2e%2e/admin` cannot slip past an `/admin` rule. The result is a byte string (one char per byte;
 * characters beyond ASCII, which rule paths may hold, count as their UTF-8 bytes).
 * null: not a path — a malformed escape, an encoded NUL, `..` above the root, or no leading `/`.
 */
export function normalizePath(path: string): string | null {
  if (path.charCodeAt(0) !== 47 /* / */) return null;
  if (isPlainPath(path)) return path;
  const raw = /[^\x00-\x7f]/.test(path) ? Buffer.from(path, "utf8").toString("latin1") : path;
  let decoded = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 37 /* % */) {
      decoded += raw[i];
      continue;
    }
    const byte = hexValue(raw.charCodeAt(i + 1)) * 16 + hexValue(raw.charCodeAt(i + 2));
    if (!(byte > 0)) return null; // NaN: malformed escape; 0: NUL
    decoded += String.fromCharCode(byte);
    i += 2;
  }
  const parts = decoded.split("/");
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] as string;
    const last = i === parts.length - 1;
    if (part === "" || part === ".") {
      trailingSlash = last;
    } else if (part === "..") {
      if (out.length === 0) return null;
      out.pop();
      trailingSlash = last;
    } else {
      out.push(part);
      trailingSlash = false;
    }
  }
  return out.length === 0 ? "/" : `/${out.join("/")}${trailingSlash ? "/" : ""}`;
}

/** ASCII, no escape, no `//`, no element starting with `.`: already normal (the common case, one scan). */
function isPlainPath(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c > 127) return false;
    if (c === 47 /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 47 || next === 46 /* . */) return false;
    }
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return Number.NaN;
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
