import { generateKeyPairSync, randomBytes } from "node:crypto";
import { loadOnFirstUse } from "../load-on-first-use.ts";

// node-forge is loaded by the first certificate: ~7 MiB of resident memory in every component that never makes one.
const nodeForge = loadOnFirstUse<typeof import("node-forge")>("node-forge");

export interface PemPair {
  cert: string;
  key: string;
}

/**
 * A self-signed server certificate (RSA 2048, SHA-256, one year), made in memory and never written to disk:
 * the ingress's default certificate, and the metrics server's when no certificate files are given.
 */
export function generateSelfSignedCertificate(commonName: string, dnsNames: readonly string[], now = new Date()): PemPair {
  const forge = nodeForge();
  // node:crypto makes the key (forge's pure-JS RSA is slow); forge builds and signs the X.509 structure.
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  // A positive serial: clear the top bit.
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + 365 * 24 * 3600_000);
  const subject = [{ name: "commonName", value: commonName }, { name: "organizationName", value: "Bollard" }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}
