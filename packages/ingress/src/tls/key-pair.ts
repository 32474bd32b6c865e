import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { refOf, type Secret } from "../model/objects.ts";
import type { KeyPair } from "../router/table.ts";

export const TLS_SECRET_TYPE = "kubernetes.io/tls";

/** Reads `tls.crt` / `tls.key` of a `kubernetes.io/tls` Secret: a KeyPair, or why it is not one. */
export function readKeyPair(secret: Secret): KeyPair | { error: string } {
  const where = `Secret ${refOf(secret.metadata).namespace}/${secret.metadata.name}`;
  if (secret.type !== undefined && secret.type !== TLS_SECRET_TYPE) {
    return { error: `${where} has type ${secret.type}, not ${TLS_SECRET_TYPE}` };
  }
  const cert = secretValue(secret, "tls.crt");
  const key = secretValue(secret, "tls.key");
  if (cert === undefined || cert.trim() === "") return { error: `${where} has no tls.crt` };
  if (key === undefined || key.trim() === "") return { error: `${where} has no tls.key` };
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    return { error: `${where}: tls.crt is not a PEM certificate (${(err as Error).message})` };
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    return { error: `${where}: tls.key is not a PEM private key (${(err as Error).message})` };
  }
  if (!x509.checkPrivateKey(privateKey)) return { error: `${where}: tls.key does not belong to the certificate in tls.crt` };
  const id = createHash("sha256").update(cert).update("\0").update(key).digest("hex");
  return { secret: refOf(secret.metadata), cert, key, id, dnsNames: dnsNamesOf(x509) };
}

/** The DNS entries of a certificate's subjectAltName, lower case. */
function dnsNamesOf(x509: X509Certificate): string[] {
  // Node writes `DNS:a.com, DNS:*.b.com, IP Address:…`, quoting (JSON) a value that holds a separator.
  const names: string[] = [];
  for (const entry of (x509.subjectAltName ?? "").split(", ")) {
    if (!entry.startsWith("DNS:")) continue;
    const value = entry.slice(4);
    names.push((value.startsWith('"') ? String(JSON.parse(value)) : value).toLowerCase());
  }
  return names;
}

/**
 * Whether a certificate with these DNS names is valid for `host` (a TLS host of an Ingress, maybe itself a
 * wildcard): an equal name, or a `*.` name standing for exactly the host's first label (RFC 6125 §6.4.3).
 */
export function certificateCovers(dnsNames: readonly string[], host: string): boolean {
  const wanted = host.toLowerCase();
  const dot = wanted.indexOf(".");
  const parent = dot > 0 && !wanted.startsWith("*.") ? wanted.slice(dot + 1) : null;
  return dnsNames.some((name) => name === wanted || (parent !== null && name.startsWith("*.") && name.slice(2) === parent));
}

export function secretValue(secret: Secret, field: string): string | undefined {
  const plain = secret.stringData?.[field];
  if (plain !== undefined) return plain;
  const encoded = secret.data?.[field];
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}
