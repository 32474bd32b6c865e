// Certificates for a throwaway control plane: RSA keys from node:crypto (native, fast), X.509 from node-forge.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  commonName: string;
  organization?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client" | "ca";
  days?: number;
}

export function generateRsaKeyPem(bits = 2048): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: bits,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

/** Issues a certificate signed by `issuer` (or self-signed when issuer is undefined). */
export function issueCertificate(request: CertificateRequest, issuer?: KeyPair): KeyPair {
  const { privatePem, publicPem } = generateRsaKeyPem();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // A positive serial: the leading byte's high bit must be clear.
  cert.serialNumber = `01${randomBytes(15).toString("hex")}`;
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + (request.days ?? 7) * 86_400_000);
  const subject: forge.pki.CertificateField[] = [{ name: "commonName", value: request.commonName }];
  if (request.organization !== undefined) subject.push({ name: "organizationName", value: request.organization });
  cert.setSubject(subject);
  const issuerCert = issuer === undefined ? undefined : forge.pki.certificateFromPem(issuer.certPem);
  cert.setIssuer(issuerCert === undefined ? subject : issuerCert.subject.attributes);
  const extensions: object[] = [];
  if (request.usage === "ca") {
    extensions.push({ name: "basicConstraints", cA: true, critical: true });
    extensions.push({ name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true });
  } else {
    extensions.push({ name: "basicConstraints", cA: false });
    extensions.push({ name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true });
    extensions.push({ name: "extKeyUsage", serverAuth: request.usage === "server", clientAuth: request.usage === "client" });
  }
  const altNames = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  if (altNames.length > 0) extensions.push({ name: "subjectAltName", altNames });
  extensions.push({ name: "subjectKeyIdentifier" });
  cert.setExtensions(extensions);
  const signingKey = forge.pki.privateKeyFromPem(issuer === undefined ? privatePem : issuer.keyPem);
  cert.sign(signingKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privatePem };
}
