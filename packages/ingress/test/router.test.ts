import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseManifests } from "@bollard/core";
import { compileRoutes, describeMatch, describeTable, matchCertificate, matchRoute, snapshotFromObjects, type Snapshot } from "../src/index.ts";
import { loadRouteCases } from "./route-cases.ts";

const cases = loadRouteCases();

function snapshotOf(file: string): Snapshot {
  return snapshotFromObjects(parseManifests(readFileSync(file, "utf8"), file), file);
}

test("the case table is not empty", () => {
  assert.ok(cases.length >= 9);
  assert.ok(cases.every((c) => c.matches.length > 0));
});

for (const c of cases) {
  describe(`fixture ${c.name}`, () => {
    const table = compileRoutes(snapshotOf(c.fixture));
    test("compiles to the expected table", () => {
      assert.deepEqual(describeTable(table), c.table);
    });
    for (const m of c.matches) {
      test(`${m.url} → ${m.expect.match ? `${m.expect.service}` : m.expect.status}`, () => {
        const url = new URL(m.url);
        assert.deepEqual(describeMatch(matchRoute(table, url.host, url.pathname)), m.expect);
      });
    }
  });
}

describe("compileRoutes", () => {
  const tlsSnapshot = snapshotOf(new URL("fixtures/tls.yaml", import.meta.url).pathname);

  test("is deterministic and independent of object order", () => {
    for (const c of cases) {
      const snap = snapshotOf(c.fixture);
      const reversed: Snapshot = {
        ingresses: [...snap.ingresses].reverse(),
        ingressClasses: [...snap.ingressClasses].reverse(),
        services: [...snap.services].reverse(),
        endpointSlices: [...snap.endpointSlices].reverse(),
        secrets: [...snap.secrets].reverse(),
      };
      const a = describeTable(compileRoutes(snap));
      const b = describeTable(compileRoutes(reversed));
      assert.deepEqual(b.hosts, a.hosts, c.name);
      assert.deepEqual(b.certificates, a.certificates, c.name);
      assert.deepEqual(b.defaultBackend, a.defaultBackend, c.name);
    }
  });

  test("SNI picks exact, then one-label wildcard, then the fallback", () => {
    const table = compileRoutes(tlsSnapshot);
    assert.equal(matchCertificate(table, "foo.com")?.secret.name, "foo-tls");
    assert.equal(matchCertificate(table, "FOO.com")?.secret.name, "foo-tls");
    assert.equal(matchCertificate(table, "a.wild.com")?.secret.name, "wild-tls");
    assert.equal(matchCertificate(table, "a.b.wild.com"), null);
    assert.equal(matchCertificate(table, "wild.com"), null);
    assert.equal(matchCertificate(table, "missing.com"), null);
    assert.equal(matchCertificate(table, undefined), null);
  });

  test("--default-ssl-certificate names the fallback pair, or says why it cannot", () => {
    const table = compileRoutes(tlsSnapshot, { defaultCertificate: { namespace: "default", name: "wild-tls" } });
    assert.equal(matchCertificate(table, "unknown.org")?.secret.name, "wild-tls");
    assert.equal(table.defaultCertificateError, null);
    const missing = compileRoutes(tlsSnapshot, { defaultCertificate: { namespace: "default", name: "nope" } });
    assert.equal(matchCertificate(missing, "unknown.org"), null);
    assert.match(missing.defaultCertificateError ?? "", /default\/nope not found/);
    const broken = compileRoutes(tlsSnapshot, { defaultCertificate: { namespace: "default", name: "mismatched-tls" } });
    assert.match(broken.defaultCertificateError ?? "", /does not belong/);
  });

  test("reads base64 `data` as the API serves Secrets", () => {
    const secret = tlsSnapshot.secrets.find((s) => s.metadata.name === "foo-tls");
    assert.ok(secret?.stringData);
    const data = Object.fromEntries(Object.entries(secret.stringData).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
    const snap = { ...tlsSnapshot, secrets: [{ ...secret, stringData: undefined, data }] };
    assert.equal(matchCertificate(compileRoutes(snap), "foo.com")?.secret.name, "foo-tls");
  });

  test("--ingress-class and the controller name choose which Ingresses are ours", () => {
    const snap = snapshotOf(new URL("fixtures/classes.yaml", import.meta.url).pathname);
    const asNginx = compileRoutes(snap, { controllerName: "k8s.io/ingress-nginx", ingressClass: "nginx" });
    assert.deepEqual(describeTable(asNginx).ingresses, ["default/legacy-theirs", "default/other-controller"]);
  });

  test("Ingresses from informers carry Date timestamps; the oldest still wins", () => {
    const snap = snapshotOf(new URL("fixtures/conflicts.yaml", import.meta.url).pathname);
    for (const ing of snap.ingresses) {
      const t = ing.metadata.creationTimestamp;
      if (typeof t === "string") ing.metadata.creationTimestamp = new Date(t);
    }
    const route = matchRoute(compileRoutes(snap), "shop.com", "/api/x");
    assert.equal(route?.ingress.name, "older");
  });

  test("the table is frozen", () => {
    const table = compileRoutes(tlsSnapshot);
    assert.ok(Object.isFrozen(table));
    const route = matchRoute(table, "foo.com", "/");
    assert.ok(route !== null && Object.isFrozen(route));
  });

  test("5000 Ingresses compile into per-host lookups; matching does not scan them", () => {
    // 5000 Ingresses, one host each, plus deep paths on one host: the answer is still found by lookups.
    const ingresses = Array.from({ length: 5000 }, (_, i) => ({
      metadata: { name: `ing-${i}`, namespace: "default" },
      spec: {
        ingressClassName: "bollard",
        rules: [{ host: `h${i}.test`, http: { paths: [{ path: `/p/${i}`, pathType: "Prefix", backend: { service: { name: "s", port: { number: 80 } } } }] } }],
      },
    }));
    const table = compileRoutes({
      ingresses,
      ingressClasses: [{ metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } }],
      services: [],
      endpointSlices: [],
      secrets: [],
    });
    assert.equal(table.exactHosts.size, 5000);
    assert.equal(matchRoute(table, "h4321.test", "/p/4321/x")?.ingress.name, "ing-4321");
    assert.equal(matchRoute(table, "h4321.test", "/p/4320"), null);
  });
});
