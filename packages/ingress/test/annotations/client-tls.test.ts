// auth-tls-*: annotations in, policy and findings out.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import forge from "node-forge";
import { generateSelfSignedCertificate } from "../../src/index.ts";
import type { Secret } from "../../src/model/objects.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (values: Record<string, string>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`${P}/${k}`, v]));
// a server certificate (not a CA)
const leaf = generateSelfSignedCertificate("leaf", ["leaf.test"]).cert;
const secret = (name: string, data: Record<string, string>, namespace = "default"): Secret => ({ metadata: { name, namespace }, stringData: data });

/** A self-signed CA certificate (node-forge, as the core package makes certificates). */
function caCert(): string {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const c = forge.pki.createCertificate();
  c.publicKey = keys.publicKey;
  c.serialNumber = "01";
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 3600_000);
  c.setSubject([{ name: "commonName", value: "CA" }]);
  c.setIssuer([{ name: "commonName", value: "CA" }]);
  c.setExtensions([{ name: "basicConstraints", cA: true }, { name: "keyUsage", keyCertSign: true }]);
  c.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
}
const ca = caCert();

describe("client certificate annotations", () => {
  test("a CA Secret (namespace/name or name) and the options make the policy", () => {
    const { policy, findings } = policyOf(
      a({ "auth-tls-secret": "certs/ca", "auth-tls-verify-client": "optional", "auth-tls-verify-depth": "2", "auth-tls-pass-certificate-to-upstream": "true", "auth-tls-error-page": "https://errors/cert" }),
      { secrets: [secret("ca", { "ca.crt": ca }, "certs")] },
    );
    assert.equal(policy.refuse, null);
    assert.deepEqual(policy.clientTls, { ca, verify: "optional", depth: 2, passCertificate: true, errorPage: "https://errors/cert" });
    assert.equal(findings.find((f) => f.name === "auth-tls-verify-depth")?.verdict, "different");
    const d = policyOf(a({ "auth-tls-secret": "ca" }), { secrets: [secret("ca", { "ca.crt": ca })] }).policy.clientTls;
    assert.deepEqual(d, { ca, verify: "on", depth: 1, passCertificate: false, errorPage: null });
  });

  const invalid: [string, Record<string, string>, Secret[], string, RegExp][] = [
    ["a missing Secret", { "auth-tls-secret": "nope" }, [], "auth-tls-secret", /not found/],
    ["no ca.crt", { "auth-tls-secret": "ca" }, [secret("ca", { "tls.crt": ca })], "auth-tls-secret", /has no ca\.crt/],
    ["garbage", { "auth-tls-secret": "ca" }, [secret("ca", { "ca.crt": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" })], "auth-tls-secret", /does not parse/],
    ["not a CA", { "auth-tls-secret": "ca" }, [secret("ca", { "ca.crt": leaf })], "auth-tls-secret", /not a CA certificate/],
    ["a bad verify mode", { "auth-tls-secret": "ca", "auth-tls-verify-client": "maybe" }, [secret("ca", { "ca.crt": ca })], "auth-tls-verify-client", /not one of/],
    ["a bad depth", { "auth-tls-secret": "ca", "auth-tls-verify-depth": "0" }, [secret("ca", { "ca.crt": ca })], "auth-tls-verify-depth", /not an integer/],
    ["a bad error page", { "auth-tls-secret": "ca", "auth-tls-error-page": "javascript:x" }, [secret("ca", { "ca.crt": ca })], "auth-tls-error-page", /not an http/],
  ];
  for (const [what, values, secrets, name, message] of invalid) {
    test(`invalid (${what}) fails closed: 503`, () => {
      const { policy, findings } = policyOf(a(values), { secrets });
      const f = findings.find((x) => x.name === name);
      assert.equal(f?.verdict, "invalid");
      assert.match(f?.message ?? "", message);
      assert.equal(policy.refuse?.status, 503);
    });
  }

  test("options without auth-tls-secret: no effect, said so", () => {
    const { policy, findings } = policyOf(a({ "auth-tls-verify-client": "on" }));
    assert.equal(policy.clientTls, null);
    assert.equal(policy.refuse, null);
    assert.equal(findings[0]?.verdict, "different");
  });
});
