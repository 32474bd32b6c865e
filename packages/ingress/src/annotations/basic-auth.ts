// HTTP basic authentication from an htpasswd Secret (security: invalid values refuse).
import type { Secret } from "../model/objects.ts";
import type { BasicAuthPolicy } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

/**
 * The htpasswd hash formats the data plane verifies (packages/dataplane/native/src/policy/basic_auth.rs parses
 * the same): apr1 and MD5-crypt (`htpasswd -m`), bcrypt (`htpasswd -B`), SHA-256/512-crypt (`mkpasswd`, glibc
 * crypt), `{SHA}` (`htpasswd -s`), `{SSHA}` and `{PLAIN}` (as nginx reads them).
 */
const HASHES: readonly RegExp[] = [
  /^\$(apr1|1)\$[^$:]{0,8}\$[./0-9A-Za-z]{22}$/,
  /^\$2[abxy]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/,
  /^\$5\$(rounds=\d{1,10}\$)?[^$:]{1,16}\$[./0-9A-Za-z]{43}$/,
  /^\$6\$(rounds=\d{1,10}\$)?[^$:]{1,16}\$[./0-9A-Za-z]{86}$/,
  /^\{SHA\}[A-Za-z0-9+/]{27}=$/,
  /^\{SSHA\}[A-Za-z0-9+/]{28,}={0,2}$/,
  /^\{PLAIN\}.*$/,
];

/** Why a hash (never shown: a hash is a secret too) is not one the data plane verifies; null when it is. */
export function hashProblem(hash: string): string | null {
  if (HASHES.some((re) => re.test(hash))) {
    const rounds = /^\$[56]\$rounds=(\d+)\$/.exec(hash)?.[1];
    if (rounds !== undefined && (Number(rounds) < 1000 || Number(rounds) > 999_999_999)) return "SHA-crypt rounds must be 1000..999999999";
    return null;
  }
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) {
    return "DES crypt(3) hashes are not supported (they keep only 8 characters of a password); make the line again with htpasswd -B (bcrypt) or -m (apr1)";
  }
  return "not a supported hash ($apr1$, $1$, $2y$/$2a$/$2b$ bcrypt, $5$/$6$ SHA-crypt, {SHA}, {SSHA}, {PLAIN})";
}

function secretValue(secret: Secret, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain;
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}

/** The users of an htpasswd file (`user:hash` lines; blank lines and `#` comments skipped), or what is wrong. */
export function parseHtpasswd(text: string): { users: { user: string; hash: string }[] } | { error: string } {
  const users: { user: string; hash: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return { error: `line ${i + 1} is not "user:hash"` };
    const user = line.slice(0, colon);
    const problem = hashProblem(line.slice(colon + 1));
    if (problem !== null) return { error: `line ${i + 1} (user "${user}"): ${problem}` };
    users.push({ user, hash: line.slice(colon + 1) });
  }
  if (users.length === 0) return { error: "has no user" };
  return { users };
}

const AUTH_OPTIONS = ["auth-secret", "auth-secret-type", "auth-realm"];

/** Reads: auth-type, auth-secret, auth-secret-type, auth-realm. */
export const readBasicAuth: PolicyReader = (read) => {
  const type = read.value("auth-type");
  if (type === undefined) {
    // ingress-nginx ignores these without auth-type: a route meant to be protected would be served open
    for (const name of AUTH_OPTIONS) if (read.has(name)) read.invalid(name, "has no effect without auth-type: basic; the routes refuse rather than serve unprotected");
    return {};
  }
  for (const name of AUTH_OPTIONS) read.touch(name);
  if (type === "digest") {
    read.invalid("auth-type", 'digest is not supported (MD5-based, and needs nonce state across replicas); use "basic" over TLS, or auth-url');
    return {};
  }
  if (type !== "basic") {
    read.invalid("auth-type", `"${type}" is not "basic"`);
    return {};
  }
  const ref = read.value("auth-secret");
  if (ref === undefined || ref === "") {
    read.invalid("auth-type", "needs auth-secret naming the htpasswd Secret");
    return {};
  }
  const secret = read.context.secret(ref);
  if (secret === undefined) {
    read.invalid("auth-secret", `Secret "${ref}" not found`);
    return {};
  }
  const secretType = read.value("auth-secret-type") ?? "auth-file";
  let parsed: ReturnType<typeof parseHtpasswd>;
  if (secretType === "auth-file") {
    const text = secretValue(secret, "auth");
    parsed = text === undefined ? { error: 'has no key "auth" (the htpasswd file)' } : parseHtpasswd(text);
  } else if (secretType === "auth-map") {
    const keys = [...new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})])].sort();
    parsed = parseHtpasswd(keys.map((user) => `${user}:${(secretValue(secret, user) ?? "").trim()}`).join("\n"));
  } else {
    read.invalid("auth-secret-type", `"${secretType}" is neither "auth-file" nor "auth-map"`);
    return {};
  }
  if ("error" in parsed) {
    read.invalid("auth-secret", `Secret "${ref}" ${parsed.error}`);
    return {};
  }
  const realm = read.value("auth-realm") ?? "";
  if (/[\x00-\x1f\x7f]/.test(realm)) {
    read.invalid("auth-realm", "has control characters");
    return {};
  }
  const basicAuth: BasicAuthPolicy = Object.freeze({ realm, users: Object.freeze(parsed.users.map((u) => Object.freeze(u))) });
  return { basicAuth };
};
