// Client certificate authentication (auth-tls-*): the TLS host asks for a certificate, checked against the CA
// bundle of a Secret (security: a missing or broken CA, or an invalid value, refuses).
import { X509Certificate } from "node:crypto";
import { secretValue } from "../tls/key-pair.ts";
import type { ClientTlsPolicy } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

const VERIFY = ["on", "off", "optional", "optional_no_ca"] as const;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The CA certificates of a PEM bundle, each parsed (a bundle with none, or a broken one, is an error). */
export function checkCaBundle(pem: string): string | null {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return "holds no CERTIFICATE block";
  for (const [i, block] of blocks.entries()) {
    try {
      const x = new X509Certificate(block);
      if (!x.ca) return `certificate ${i + 1} (${x.subject.replace(/\n/g, ", ")}) is not a CA certificate`;
    } catch (err) {
      return `certificate ${i + 1} does not parse (${(err as Error).message})`;
    }
  }
  return null;
}

/** Reads: auth-tls-secret, auth-tls-verify-client, auth-tls-verify-depth, auth-tls-pass-certificate-to-upstream, auth-tls-error-page. */
export const readClientTls: PolicyReader = (read) => {
  const ref = read.value("auth-tls-secret");
  const others = ["auth-tls-verify-client", "auth-tls-verify-depth", "auth-tls-pass-certificate-to-upstream", "auth-tls-error-page"];
  if (ref === undefined || ref === "") {
    for (const n of others) if (read.has(n)) read.differs(n, "has no effect without auth-tls-secret");
    return {};
  }
  const secret = read.context.secret(ref);
  let ca: string | null = null;
  if (secret === undefined) read.invalid("auth-tls-secret", `Secret ${ref} not found`);
  else {
    const pem = secretValue(secret, "ca.crt");
    const problem = pem === undefined || pem.trim() === "" ? "has no ca.crt" : checkCaBundle(pem);
    if (problem !== null) read.invalid("auth-tls-secret", `Secret ${ref}: ca.crt ${problem}`);
    else ca = pem ?? null;
  }
  const verifyText = read.value("auth-tls-verify-client") ?? "on";
  const verify = VERIFY.find((v) => v === verifyText);
  if (verify === undefined) read.invalid("auth-tls-verify-client", `"${verifyText}" is not one of ${VERIFY.join(", ")}`);
  const depth = read.int("auth-tls-verify-depth", 1, 1, 16);
  if (read.has("auth-tls-verify-depth") && depth > 1) read.differs("auth-tls-verify-depth", "the depth is counted over the intermediates the client sends");
  const passCertificate = read.bool("auth-tls-pass-certificate-to-upstream", false);
  const errorPage = read.value("auth-tls-error-page") ?? null;
  if (errorPage !== null && !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(errorPage) && !/^\/[^\s]*$/.test(errorPage)) {
    read.invalid("auth-tls-error-page", `"${errorPage}" is not an http(s) URL or a path`);
  }
  // (anything invalid above refuses the Ingress; the policy is still complete, so the data plane can compile it)
  if (ca === null) return {};
  const policy: ClientTlsPolicy = Object.freeze({ ca, verify: verify ?? "on", depth, passCertificate, errorPage: errorPage === "" ? null : errorPage });
  return { clientTls: policy };
};
