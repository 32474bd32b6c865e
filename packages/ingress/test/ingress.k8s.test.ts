// `bollard ingress` as a child process against the real API server: Ingresses created, changed and deleted
// are served, status is published, a rotated Secret's certificate is served, a missing Service is an Event
// and leaves other routes alone, SIGTERM stops it cleanly. Backends are HTTP servers on loopback, reached
// through EndpointSlices as the EndpointSlice controller would write them. The API server refuses loopback
// addresses in EndpointSlices, so the backends run in a network namespace of the test's own, behind a veth.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { connect } from "node:tls";
import { after, before, describe, test } from "node:test";
import { createKubeConfig, isStatus, kubeRequest } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import { generateSelfSignedCertificate } from "../src/index.ts";
import { rawExchange, send, statusOf } from "./helpers/client.ts";
import { createServiceWithSlice, statusAndBackend, writeWithFreshVersion } from "./helpers/objects.ts";
import { type BackendNamespace, createBackendNamespace } from "./helpers/netns.ts";
import { eventually, freePort } from "./helpers/wait.ts";

const kubeconfigPath = process.env.BOLLARD_KUBECONFIG;
const suffix = randomBytes(3).toString("hex");
const ns = `ingress-${suffix}`;
const className = `bollard-${suffix}`;
const bollard = join(import.meta.dirname, "..", "..", "cli", "bin", "bollard.ts");

function serverCertificate(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.on("error", reject);
  });
}

const tlsData = (pair: { cert: string; key: string }) => ({ "tls.crt": Buffer.from(pair.cert).toString("base64"), "tls.key": Buffer.from(pair.key).toString("base64") });

describe("bollard ingress against the API server", () => {
  let kc: KubeConfig;
  let backends: BackendNamespace;
  const a = { port: 8081 };
  const b = { port: 8082 };
  let child: ChildProcess;
  let output = "";
  let ports: { http: number; https: number; metrics: number };
  const api = <T = unknown>(method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE", path: string, body?: unknown, contentType?: string) =>
    kubeRequest<T>(kc, { method, path, ...(body === undefined ? {} : { body }), ...(contentType ? { contentType } : {}) });
  const ingressPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;
  const webIngress = (service: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "web", namespace: ns },
    spec: { ingressClassName: className, rules: [{ host: "web.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: service, port: { name: "http" } } } }] } }], ...extra },
  });
  const serviceWithSlice = (name: string, backendPort: number) => createServiceWithSlice(kc, ns, name, backends.address, backendPort, "web");
  const bodyOf = async (host: string) => statusAndBackend(await send(ports.http, { host }));

  before(async () => {
    assert.ok(kubeconfigPath, "BOLLARD_KUBECONFIG must point at the test control plane (run through test/run.ts)");
    kc = createKubeConfig({ kubeconfig: kubeconfigPath });
    backends = createBackendNamespace();
    await backends.startBackend("a", a.port);
    await backends.startBackend("b", b.port);
    await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    await api("POST", "/apis/networking.k8s.io/v1/ingressclasses", {
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: { name: className },
      spec: { controller: "bollard.dev/ingress-controller" },
    });
    await serviceWithSlice("svc-a", a.port);
    await serviceWithSlice("svc-b", b.port);
    // The Service whose load-balancer address the Ingresses publish (as the Bollard controller would set it).
    await api("POST", `/api/v1/namespaces/${ns}/services`, { apiVersion: "v1", kind: "Service", metadata: { name: "ingress-lb" }, spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80 }] } });
    await api("PATCH", `/api/v1/namespaces/${ns}/services/ingress-lb/status`, { status: { loadBalancer: { ingress: [{ ip: "192.0.2.10" }] } } }, "application/merge-patch+json");

    ports = { http: await freePort(), https: await freePort(), metrics: await freePort() };
    child = spawn(
      process.execPath,
      [
        bollard,
        "ingress",
        "--kubeconfig", kubeconfigPath,
        "--watch-namespace", ns,
        "--publish-service", `${ns}/ingress-lb`,
        "--bind-address", "127.0.0.1",
        "--http-port", String(ports.http),
        "--https-port", String(ports.https),
        "--https-redirect-port", "8443",
        "--metrics-port", String(ports.metrics),
        "--shutdown-grace", "5",
        // a switch-over from ingress-nginx: its class served by name, its controller ConfigMap's defaults
        "--watch-ingress-class", `nginx-${suffix}`,
        "--configmap", `${ns}/ingress-nginx-controller`,
      ],
      { env: { ...process.env, POD_NAMESPACE: ns, POD_NAME: `ingress-test-${suffix}` }, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    await eventually("readyz", async () => assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 200));
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    backends?.destroy();
    if (kc) {
      await api("DELETE", `/apis/networking.k8s.io/v1/ingressclasses/${className}`).catch(() => {});
      await api("DELETE", `/apis/networking.k8s.io/v1/ingressclasses/nginx-${suffix}`).catch(() => {});
      await api("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
    }
  });

  test("an Ingress created is served; changed, the new backend is served; status is published", async () => {
    assert.equal(await bodyOf("web.test"), "404");
    await api("POST", ingressPath, webIngress("svc-a"));
    await eventually("created Ingress served", async () => assert.equal(await bodyOf("web.test"), "200 a"));
    await writeWithFreshVersion(kc, `${ingressPath}/web`, (resourceVersion) => api("PUT", `${ingressPath}/web`, { ...webIngress("svc-b"), metadata: { name: "web", namespace: ns, resourceVersion } }));
    await eventually("changed Ingress served", async () => assert.equal(await bodyOf("web.test"), "200 b"));
    await eventually("status published", async () => {
      const ing = await api<{ status?: { loadBalancer?: { ingress?: { ip?: string }[] } } }>("GET", `${ingressPath}/web`);
      assert.deepEqual(ing.status?.loadBalancer?.ingress, [{ ip: "192.0.2.10" }]);
    });
  });

  test("`GET / HTTP/2.0` (the 18 bytes that used to stop it) → 505, and it keeps serving", async () => {
    await eventually("served", async () => assert.equal(await bodyOf("web.test"), "200 b"));
    assert.equal(statusOf(await rawExchange(ports.http, "GET / HTTP/2.0\r\n\r\n")), 505);
    assert.equal(child.exitCode, null, output);
    assert.equal(await bodyOf("web.test"), "200 b");
  });

  test("endpoints follow the EndpointSlice", async () => {
    await api("PATCH", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/svc-b-1`, { ports: [{ name: "http", port: a.port, protocol: "TCP" }] }, "application/merge-patch+json");
    await eventually("slice change served", async () => assert.equal(await bodyOf("web.test"), "200 a"));
    await api("PATCH", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/svc-b-1`, { ports: [{ name: "http", port: b.port, protocol: "TCP" }] }, "application/merge-patch+json");
    await eventually("slice change back", async () => assert.equal(await bodyOf("web.test"), "200 b"));
  });

  test("a missing Service: a Warning Event on that Ingress, 503 for its route, other routes unaffected", async () => {
    await api("POST", ingressPath, {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "broken" },
      spec: { ingressClassName: className, rules: [{ host: "broken.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "nope", port: { number: 80 } } } }] } }] },
    });
    await eventually("broken route answers 503", async () => assert.equal(await bodyOf("broken.test"), "503"));
    assert.equal(await bodyOf("web.test"), "200 b");
    await eventually("Event recorded", async () => {
      const list = await api<{ items: { reason?: string; note?: string; type?: string; regarding?: { name?: string; kind?: string } }[] }>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      const ev = list.items.find((e) => e.regarding?.kind === "Ingress" && e.regarding.name === "broken" && e.reason === "ServiceNotFound");
      assert.ok(ev, JSON.stringify(list.items.map((e) => [e.regarding?.name, e.reason])));
      assert.equal(ev.type, "Warning");
      assert.match(ev.note ?? "", /nope/);
    });
  });

  test("TLS from a Secret; plain HTTP redirected; a rotated Secret served without restart", async () => {
    const v1 = generateSelfSignedCertificate("web.test", ["web.test"]);
    const v2 = generateSelfSignedCertificate("web.test", ["web.test"]);
    await api("POST", `/api/v1/namespaces/${ns}/secrets`, { apiVersion: "v1", kind: "Secret", metadata: { name: "web-tls" }, type: "kubernetes.io/tls", data: tlsData(v1) });
    await writeWithFreshVersion(kc, `${ingressPath}/web`, (resourceVersion) =>
      api("PUT", `${ingressPath}/web`, { ...webIngress("svc-b", { tls: [{ hosts: ["web.test"], secretName: "web-tls" }] }), metadata: { name: "web", namespace: ns, resourceVersion } }),
    );
    const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
    await eventually("certificate served", async () => assert.equal(await serverCertificate(ports.https, "web.test"), fp(v1.cert)));
    const redirect = await send(ports.http, { host: "web.test", path: "/x" });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, "https://web.test:8443/x"); // --https-redirect-port
    await api("PUT", `/api/v1/namespaces/${ns}/secrets/web-tls`, { apiVersion: "v1", kind: "Secret", metadata: { name: "web-tls" }, type: "kubernetes.io/tls", data: tlsData(v2) });
    await eventually("rotated certificate served", async () => assert.equal(await serverCertificate(ports.https, "web.test"), fp(v2.cert)));
  });

  test("a certificate not valid for a TLS host it is listed for: served anyway, and a Warning Event names host and Secret", async () => {
    await api("POST", ingressPath, {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "uncovered" },
      spec: {
        ingressClassName: className,
        tls: [{ hosts: ["uncovered.test"], secretName: "web-tls" }],
        rules: [{ host: "uncovered.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "svc-a", port: { name: "http" } } } }] } }],
      },
    });
    await eventually("Event recorded", async () => {
      const list = await api<{ items: { reason?: string; note?: string; type?: string; regarding?: { name?: string; kind?: string } }[] }>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      const ev = list.items.find((e) => e.regarding?.kind === "Ingress" && e.regarding.name === "uncovered" && e.reason === "CertificateHostMismatch");
      assert.ok(ev, JSON.stringify(list.items.map((e) => [e.regarding?.name, e.reason])));
      assert.equal(ev.type, "Warning");
      assert.match(ev.note ?? "", /uncovered\.test/);
      assert.match(ev.note ?? "", new RegExp(`${ns}/web-tls`));
    });
    const webTls = await serverCertificate(ports.https, "web.test");
    await eventually("web-tls served for uncovered.test", async () => assert.equal(await serverCertificate(ports.https, "uncovered.test"), webTls));
  });

  test("ingress-nginx's class served by name; its ConfigMap's keys are defaults, live; unsupported annotations are Events", async () => {
    await api("POST", "/apis/networking.k8s.io/v1/ingressclasses", {
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: { name: `nginx-${suffix}` },
      spec: { controller: "k8s.io/ingress-nginx" },
    });
    await api("POST", ingressPath, {
      ...webIngress("svc-b", { ingressClassName: `nginx-${suffix}`, tls: [{ hosts: ["nginx.test"] }] }),
      metadata: { name: "from-nginx", namespace: ns, annotations: { "nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers 'X: y';" } },
    });
    const redirected = async () => (await send(ports.http, { host: "nginx.test" })).status;
    // (webIngress's rule is for web.test; the TLS host nginx.test needs its own rule)
    await writeWithFreshVersion(kc, `${ingressPath}/from-nginx`, (resourceVersion) =>
      api("PATCH", `${ingressPath}/from-nginx`, { spec: { rules: [{ host: "nginx.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "svc-b", port: { name: "http" } } } }] } }] }, metadata: { resourceVersion } }, "application/merge-patch+json"),
    );
    await eventually("the nginx-class Ingress served, plain HTTP redirected (ssl-redirect's default)", async () => assert.equal(await redirected(), 308));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ingress-nginx-controller" }, data: { "ssl-redirect": "false" } });
    await eventually("the ConfigMap's ssl-redirect: false applies", async () => assert.equal(await redirected(), 200));
    await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/ingress-nginx-controller`);
    await eventually("the default again once the ConfigMap is gone", async () => assert.equal(await redirected(), 308));
    await eventually("an UnsupportedAnnotation Event names the snippet", async () => {
      const list = await api<{ items: { reason?: string; note?: string; type?: string; regarding?: { name?: string } }[] }>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      const ev = list.items.find((e) => e.regarding?.name === "from-nginx" && e.reason === "UnsupportedAnnotation");
      assert.ok(ev, JSON.stringify(list.items.map((e) => [e.regarding?.name, e.reason])));
      assert.equal(ev.type, "Warning");
      assert.match(ev.note ?? "", /configuration-snippet.*never evaluates user text/);
    });
    await api("DELETE", `${ingressPath}/from-nginx`);
  });

  test("an Ingress deleted → 404; metrics count requests", async () => {
    await api("DELETE", `${ingressPath}/web`);
    await eventually("deleted Ingress gone", async () => assert.equal(await bodyOf("web.test"), "404"));
    const metrics = (await send(ports.metrics, { path: "/metrics" })).body.toString();
    assert.match(metrics, new RegExp(`bollard_ingress_requests_total\\{ingress="${ns}/web",service="svc-b",status="2xx"\\} \\d+`));
    assert.match(metrics, /bollard_ingress_route_table_swaps_total \d+/);
    assert.match(metrics, /bollard_ingress_config_last_reload_successful_timestamp_seconds \d/);
  });

  test("SIGTERM: exits 0 and releases its Lease", async () => {
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, output.slice(-4000));
    type Lease = { spec?: { holderIdentity?: string } };
    const lease = await api<Lease>("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/bollard-ingress-bollard`).catch((err): Lease => {
      if (isStatus(err, 404)) return {};
      throw err;
    });
    assert.ok(!lease.spec?.holderIdentity, `lease still held by ${lease.spec?.holderIdentity}`);
  });
});

describe("bollard ingress --workers 2", () => {
  test("two threads share the ports, both serve the route, metrics count every request, SIGTERM stops all", async () => {
    assert.ok(kubeconfigPath, "BOLLARD_KUBECONFIG must point at the test control plane (run through test/run.ts)");
    const kc = createKubeConfig({ kubeconfig: kubeconfigPath });
    const wns = `ingress-w-${suffix}`;
    const api = (method: "POST" | "DELETE", path: string, body?: unknown) => kubeRequest(kc, { method, path, ...(body === undefined ? {} : { body }) });
    const backends = createBackendNamespace();
    let child: ChildProcess | undefined;
    let output = "";
    try {
      await backends.startBackend("w", 8081);
      await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: wns } });
      await api("POST", `/api/v1/namespaces/${wns}/services`, { apiVersion: "v1", kind: "Service", metadata: { name: "w" }, spec: { ports: [{ name: "http", port: 80 }] } });
      await api("POST", `/apis/discovery.k8s.io/v1/namespaces/${wns}/endpointslices`, {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: { name: "w-1", labels: { "kubernetes.io/service-name": "w" } },
        addressType: "IPv4",
        ports: [{ name: "http", port: 8081, protocol: "TCP" }],
        endpoints: [{ addresses: [backends.address] }],
      });
      await api("POST", `/apis/networking.k8s.io/v1/namespaces/${wns}/ingresses`, {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name: "w", annotations: { "kubernetes.io/ingress.class": "workers" } },
        spec: { rules: [{ host: "w.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "w", port: { number: 80 } } } }] } }] },
      });
      const ports = { http: await freePort(), https: await freePort(), metrics: await freePort() };
      child = spawn(
        process.execPath,
        [bollard, "ingress", "--kubeconfig", kubeconfigPath, "--watch-namespace", wns, "--ingress-class", "workers", "--workers", "2", "--bind-address", "127.0.0.1",
          "--http-port", String(ports.http), "--https-port", String(ports.https), "--metrics-port", String(ports.metrics), "--shutdown-grace", "5"],
        { env: { ...process.env, POD_NAMESPACE: wns }, stdio: ["ignore", "pipe", "pipe"] },
      );
      child.stdout?.on("data", (c: Buffer) => {
        output += c.toString();
      });
      child.stderr?.on("data", (c: Buffer) => {
        output += c.toString();
      });
      await eventually("readyz", async () => assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 200));
      // New connections are spread over the threads; every thread must have the route, so all must succeed.
      await eventually("served by the workers", async () => {
        for (let i = 0; i < 40; i++) assert.equal((await send(ports.http, { host: "w.test" })).status, 200);
      });
      const metrics = (await send(ports.metrics, { path: "/metrics" })).body.toString();
      const served = Number(/bollard_ingress_requests_total\{[^}]*status="2xx"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
      assert.ok(served >= 40, `2xx count ${served}`);
      const exited = new Promise<number | null>((resolve) => child?.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0, output.slice(-4000));
      await assert.rejects(send(ports.http, { host: "w.test" }), /ECONNREFUSED/);
    } finally {
      if (child && child.exitCode === null) child.kill("SIGKILL");
      backends.destroy();
      await api("DELETE", `/api/v1/namespaces/${wns}`).catch(() => {});
    }
  });
});
