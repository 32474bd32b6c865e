// compileRoutes reuses what it worked out for an Ingress object, a path's backend and a Route from one compile to
// the next (informers replace an object when it changes). A differential test: after every random change, the
// table compiled with that reuse equals the table compiled from fresh copies of every object (nothing to reuse),
// and the Routes of Ingresses the change did not touch are the very objects of the previous table.
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom } from "@bollard/core";
import { compileRoutes, type Route, type RouteTable, type Snapshot } from "../src/index.ts";
import type { EndpointSlice, Ingress, IngressClass, Service } from "../src/model/objects.ts";

const NAMESPACES = ["a", "b"];
const SERVICES = ["s0", "s1", "s2"];
const HOSTS = ["foo.com", "bar.com", "*.wild.com", "x.wild.com", "", "Foo.com", "bad..host"];
const PATHS = ["/", "/api", "/api/v1", "/api//v1/", "/static/app.js", "/%2e%2e/up", "/../x", "", "rel"];
const PATH_TYPES = ["Exact", "Prefix", "ImplementationSpecific", "Bogus"];

const ingressClass: IngressClass = { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } };

function generator(seed: number) {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  let serial = 0;
  const ingress = (namespace: string, name: string): Ingress => {
    const rules = Array.from({ length: 1 + Math.floor(random() * 2) }, () => {
      const host = pick(HOSTS);
      return {
        ...(host === "" ? {} : { host }),
        http: {
          paths: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
            path: pick(PATHS),
            pathType: pick(PATH_TYPES),
            backend: random() < 0.9 ? { service: { name: pick([...SERVICES, "missing"]), port: random() < 0.8 ? { number: 80 } : { name: pick(["http", "nope"]) } } } : {},
          })),
        },
      };
    });
    const tls = random() < 0.3 ? [{ hosts: [pick(HOSTS.filter((h) => h !== ""))], secretName: "no-such-secret" }] : undefined;
    const defaultBackend = random() < 0.15 ? { service: { name: pick(SERVICES), port: { number: 80 } } } : undefined;
    return {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: {
        name,
        namespace,
        creationTimestamp: new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 5) * 1000).toISOString(),
        ...(random() < 0.1 ? { annotations: { "bollard.dev/ssl-redirect": "false" } } : {}),
      },
      spec: { ingressClassName: random() < 0.95 ? "bollard" : "other", rules, ...(tls ? { tls } : {}), ...(defaultBackend ? { defaultBackend } : {}) },
    };
  };
  const service = (namespace: string, name: string): Service =>
    random() < 0.2
      ? { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { type: "ExternalName", externalName: `ext-${serial++}.example`, ports: [{ name: "http", port: 80 }] } }
      : { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { type: "ClusterIP", ports: [{ name: random() < 0.8 ? "http" : "web", port: 80 }] } };
  const slice = (namespace: string, service: string, k: number): EndpointSlice => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `${service}-${k}`, namespace, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080 }],
    endpoints: Array.from({ length: Math.floor(random() * 3) }, () => ({ addresses: [`10.0.${Math.floor(random() * 4)}.${Math.floor(random() * 250)}`], conditions: { ready: random() < 0.8 } })),
  });
  return { random, pick, ingress, service, slice };
}

/** Every object copied: the compile that gets it has nothing to reuse. */
const fresh = (snapshot: Snapshot): Snapshot => structuredClone(snapshot);

/** Routes of a table with the Ingress they came from. */
function routesOf(table: RouteTable): Route[] {
  const out: Route[] = [];
  const walk = (node: { route: Route | null; children: ReadonlyMap<string, unknown> }) => {
    if (node.route !== null) out.push(node.route);
    for (const child of node.children.values()) walk(child as typeof node);
  };
  for (const hosts of [table.exactHosts.values(), table.wildcardHosts.values(), ...(table.anyHost ? [[table.anyHost].values()] : [])]) {
    for (const rules of hosts) {
      out.push(...rules.exact.values());
      walk(rules.prefix);
    }
  }
  return out;
}

for (let seed = 1; seed <= 12; seed++) {
  test(`seed ${seed}: the table with reuse equals the table from fresh objects after each of 120 changes`, () => {
    const g = generator(seed);
    const ingresses = new Map<string, Ingress>();
    const services = new Map<string, Service>();
    const slices = new Map<string, EndpointSlice>();
    for (const ns of NAMESPACES) {
      for (const s of SERVICES) {
        services.set(`${ns}/${s}`, g.service(ns, s));
        slices.set(`${ns}/${s}-0`, g.slice(ns, s, 0));
      }
      for (let i = 0; i < 6; i++) ingresses.set(`${ns}/ing-${i}`, g.ingress(ns, `ing-${i}`));
    }
    const snapshot = (): Snapshot => ({ ingresses: [...ingresses.values()], ingressClasses: [ingressClass], services: [...services.values()], endpointSlices: [...slices.values()], secrets: [] });
    let previous = compileRoutes(snapshot());
    let reused = 0;
    for (let step = 0; step < 120; step++) {
      const ns = g.pick(NAMESPACES);
      const kind = g.random();
      let touched: string | null = null;
      let onlyIngress = false;
      if (kind < 0.45) {
        const name = `ing-${Math.floor(g.random() * 9)}`;
        touched = `${ns}/${name}`;
        if (g.random() < 0.2) ingresses.delete(touched);
        else ingresses.set(touched, g.ingress(ns, name));
        onlyIngress = true;
      } else if (kind < 0.6) {
        const s = g.pick(SERVICES);
        if (g.random() < 0.15) services.delete(`${ns}/${s}`);
        else services.set(`${ns}/${s}`, g.service(ns, s));
      } else if (kind < 0.85) {
        const s = g.pick(SERVICES);
        const k = Math.floor(g.random() * 2);
        if (g.random() < 0.2) slices.delete(`${ns}/${s}-${k}`);
        else slices.set(`${ns}/${s}-${k}`, g.slice(ns, s, k));
      } // else: nothing changed (a relist)
      const next = snapshot();
      const table = compileRoutes(next);
      assert.deepStrictEqual(table, compileRoutes(fresh(next)), `seed ${seed} step ${step}`);
      if (onlyIngress) {
        // What another Ingress routes is the same Route object as before, unless this Ingress's change took or gave
        // back one of its claims (then that host's routes may move); every Route it keeps is reused.
        const before = new Set(routesOf(previous));
        for (const route of routesOf(table)) {
          if (`${route.ingress.namespace}/${route.ingress.name}` === touched) continue;
          if (before.has(route)) reused++;
        }
      }
      previous = table;
    }
    assert.ok(reused > 0, "no Route was ever reused");
  });
}

test("an unchanged cluster compiles to the same Route and Backend objects; a changed EndpointSlice replaces exactly its Service's", () => {
  const g = generator(99);
  const ingresses = NAMESPACES.flatMap((ns) => [0, 1, 2].map((i) => g.ingress(ns, `ing-${i}`)));
  const services = NAMESPACES.flatMap((ns) => SERVICES.map((s) => ({ apiVersion: "v1", kind: "Service", metadata: { name: s, namespace: ns }, spec: { type: "ClusterIP", ports: [{ name: "http", port: 80 }] } }) as Service));
  const slices = NAMESPACES.flatMap((ns) => SERVICES.map((s) => ({ ...g.slice(ns, s, 0), endpoints: [{ addresses: ["10.0.0.1"] }] })));
  const snapshot: Snapshot = { ingresses, ingressClasses: [ingressClass], services, endpointSlices: slices, secrets: [] };
  const first = routesOf(compileRoutes(snapshot));
  const again = routesOf(compileRoutes({ ...snapshot }));
  assert.ok(first.length > 0);
  assert.deepEqual(again.map((r, i) => r === first[i]), first.map(() => true));

  const changed = { ...(slices[0] as EndpointSlice), endpoints: [{ addresses: ["10.0.0.2"] }] };
  const third = routesOf(compileRoutes({ ...snapshot, endpointSlices: [changed, ...slices.slice(1)] }));
  const service = `${changed.metadata.namespace}/${changed.metadata.labels?.["kubernetes.io/service-name"]}`;
  for (const [i, route] of third.entries()) {
    const onChanged = `${route.backend.namespace}/${route.backend.service}` === service && route.backend.unavailable === null;
    assert.equal(route === first[i], !onChanged, `${route.host} ${route.path}`);
    if (onChanged) assert.deepEqual(route.backend.endpoints, [{ host: "10.0.0.2", port: 8080 }]);
  }
});
