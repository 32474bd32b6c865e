// The snapshot contract: every route of a compiled table reaches the native side once, a bad snapshot is
// refused with the field at fault, and the table in service stays as it was.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parseManifests } from "@bollard/core";
import { compileRoutes, DEFAULT_POLICY, emptyRouteTable, type RouteTable, snapshotFromObjects, generateDefaultCertificate } from "@bollard/ingress";
import { loadRouteCases } from "../../ingress/test/route-cases.ts";
import { createDataPlane, type DataPlaneSnapshot, InvalidSnapshotError, loadNative, snapshotFromTable } from "../src/index.ts";

const defaultCertificate = generateDefaultCertificate();

const tableOf = (file: string): RouteTable => compileRoutes(snapshotFromObjects(parseManifests(readFileSync(file, "utf8"), file), file));

test("every fixture's table becomes a snapshot the native side accepts, each route and backend once", () => {
  for (const c of loadRouteCases()) {
    const table = tableOf(c.fixture);
    const { snapshot, routes } = snapshotFromTable(table);
    assert.equal(new Set(routes).size, routes.length, c.name);
    assert.equal(snapshot.routes.length, routes.length, c.name);
    assert.ok(snapshot.routes.every((r) => r.backend >= 0 && r.backend < snapshot.backends.length), c.name);
    assert.equal(snapshot.defaultRoute === null, table.defaultRoute === null, c.name);
    createDataPlane({ defaultCertificate }).setTable(table);
  }
});

test("TLS hosts and the fallback reach the native side; SNI picks exact, then one-label wildcard", () => {
  const fixture = loadRouteCases().find((c) => c.name === "tls");
  assert.ok(fixture);
  const plane = createDataPlane({ defaultCertificate });
  plane.setTable(tableOf(fixture.fixture));
  assert.equal(plane.certificateFor("foo.com")?.secret.name, "foo-tls");
  assert.equal(plane.certificateFor("FOO.com")?.secret.name, "foo-tls");
  assert.equal(plane.certificateFor("a.wild.com")?.secret.name, "wild-tls");
  assert.equal(plane.certificateFor("a.b.wild.com"), null);
  assert.equal(plane.certificateFor(null), null);
});

test("a refused snapshot names the field, counts, and leaves the table in service untouched", () => {
  const plane = createDataPlane({ defaultCertificate });
  const hosts = loadRouteCases().find((c) => c.name === "hosts");
  assert.ok(hosts);
  plane.setTable(tableOf(hosts.fixture));
  assert.equal(plane.routeFor("foo.com", "/app")?.path, "/app");

  // The native side checks what it is given, whatever the TypeScript side meant to send.
  const { DataPlane } = loadNative();
  const raw = new DataPlane({ trustedProxies: [], maxBodySize: 1, maxHeaderSize: 8192, requestBufferSize: 0, clientBodyTimeoutMs: 1, underscoresInHeaders: false, http2MaxConcurrentStreams: 1, connectTimeoutMs: 1, readTimeoutMs: 1, headersTimeoutMs: 1, requestTimeoutMs: 1, keepAliveTimeoutMs: 1, http2MaxResetsPerSecond: 1, accessLog: false, upstreamKeepAliveTimeoutMs: 1, httpsRedirectPort: 443, defaultCert: defaultCertificate.cert, defaultKey: defaultCertificate.key });
  const good: DataPlaneSnapshot = snapshotFromTable(tableOf(hosts.fixture)).snapshot;
  const refuse = (snapshot: unknown) => raw.setSnapshot(JSON.stringify(snapshot));
  assert.equal(refuse(good).accepted, true);
  const cases: [unknown, string][] = [
    [{ ...good, version: 99 }, "version"],
    [{ ...good, routes: [{ ...good.routes[0], backend: 42 }] }, "routes[0].backend"],
    [{ ...good, routes: [{ ...good.routes[0], path: "/../x" }] }, "routes[0].path"],
    [{ ...good, routes: [{ ...good.routes[0], host: "a..b" }] }, "routes[0].host"],
    [{ ...good, routes: [good.routes[0], good.routes[0]] }, "routes[1]"],
    [{ ...good, backends: [{ ...good.backends[0], endpoints: [{ host: "10.0.0.1", port: 0 }] }] }, "backends[0].endpoints[0].port"],
    [{ ...good, backends: [{ ...good.backends[0], endpoints: [{ host: "a b", port: 80 }] }] }, "backends[0].endpoints[0].host"],
    [{ ...good, defaultRoute: 77 }, "defaultRoute"],
    [{ ...good, tls: { hosts: [{ host: "foo.com", certificate: 0 }], fallback: null } }, "tls.hosts[0].certificate"],
  ];
  for (const [snapshot, field] of cases) {
    const result = refuse(snapshot);
    assert.equal(result.accepted, false, field);
    assert.equal(result.field, field, `${field}: ${result.message}`);
    assert.ok((result.message ?? "").length > 0);
  }
  const unknownField = refuse({ ...good, extra: true });
  assert.equal(unknownField.accepted, false);
  assert.match(unknownField.message ?? "", /unknown field `extra`/);
  assert.equal(raw.counters().snapshotsRefused, cases.length + 1);

  // Through the wrapper: a typed error, and the previous table still answers.
  const backend = { namespace: "d", service: "s", port: 80, endpoints: [{ host: "10.0.0.1", port: 70000 }], unavailable: null };
  const route = { ingress: { namespace: "d", name: "x" }, host: null, path: "/", pathType: "Prefix" as const, backend, sslRedirect: false, regex: false, policy: DEFAULT_POLICY, canaries: [], errorBackend: null };
  const broken: RouteTable = { ...emptyRouteTable(), anyHost: { exact: new Map(), prefix: { route, children: new Map() }, regex: [] } };
  assert.throws(
    () => plane.setTable(broken),
    (err: unknown) => err instanceof InvalidSnapshotError && err.field === "backends[0].endpoints[0].port",
  );
  assert.equal(plane.routeFor("foo.com", "/app")?.path, "/app");
});
