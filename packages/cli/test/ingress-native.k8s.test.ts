// `bollard ingress` with its data plane (the native one, @bollard/dataplane) as a child process against the real API
// server: without --bind-address it listens on IPv6 and IPv4 alike; it becomes ready only with its native
// listeners bound, routes an Ingress to a backend (reached through an EndpointSlice, in a
// network namespace of the test's own: the API server refuses loopback addresses), follows a change, counts
// requests into /metrics, answers hostile input itself, and on SIGTERM lets a request in flight finish before it exits 0 and closes its ports.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import { rawExchange, send, statusOf } from "../../ingress/test/helpers/client.ts";
import { createServiceWithSlice, statusAndBackend, writeWithFreshVersion } from "../../ingress/test/helpers/objects.ts";
import { type BackendNamespace, createBackendNamespace } from "../../ingress/test/helpers/netns.ts";
import { eventually, freePort } from "../../ingress/test/helpers/wait.ts";

const kubeconfigPath = process.env.BOLLARD_KUBECONFIG;
const suffix = randomBytes(3).toString("hex");
const ns = `ingress-native-${suffix}`;
const className = `native-${suffix}`;
const bollard = join(import.meta.dirname, "..", "bin", "bollard.ts");

/** One request over IPv6 loopback; everything until the server closes. */
function rawExchange6(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "::1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
    socket.write(text);
  });
}

describe("bollard ingress (the native data plane, by default) against the API server", () => {
  let kc: KubeConfig;
  let backends: BackendNamespace;
  let child: ChildProcess;
  let output = "";
  let ports: { http: number; https: number; metrics: number };
  const api = <T = unknown>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown) => kubeRequest<T>(kc, { method, path, ...(body === undefined ? {} : { body }) });
  const ingressPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;
  const ingress = (service: string) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "web", namespace: ns },
    spec: { ingressClassName: className, rules: [{ host: "web.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: service, port: { number: 80 } } } }] } }] },
  });
  const serviceWithSlice = (name: string, backendPort: number) => createServiceWithSlice(kc, ns, name, backends.address, backendPort);
  const answer = async (host: string) => statusAndBackend(await send(ports.http, { host }));

  before(async () => {
    assert.ok(kubeconfigPath, "BOLLARD_KUBECONFIG must point at the test control plane (run through test/run.ts)");
    kc = createKubeConfig({ kubeconfig: kubeconfigPath });
    backends = createBackendNamespace();
    await backends.startBackend("a", 8081);
    await backends.startBackend("b", 8082);
    await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    await api("POST", "/apis/networking.k8s.io/v1/ingressclasses", {
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: { name: className },
      spec: { controller: "bollard.dev/ingress-controller" },
    });
    await serviceWithSlice("svc-a", 8081);
    await serviceWithSlice("svc-b", 8082);
    await api("POST", ingressPath, ingress("svc-a"));
    ports = { http: await freePort(), https: await freePort(), metrics: await freePort() };
    child = spawn(
      process.execPath,
      [
        bollard, "ingress", "--workers", "2",
        "--kubeconfig", kubeconfigPath, "--watch-namespace", ns,
        "--http-port", String(ports.http), "--https-port", String(ports.https), "--metrics-port", String(ports.metrics),
        "--shutdown-grace", "5",
      ],
      { env: { ...process.env, POD_NAMESPACE: ns, POD_NAME: `ingress-native-${suffix}` }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const collect = (c: Buffer) => {
      output += c.toString();
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    backends?.destroy();
    if (kc) {
      await api("DELETE", `/apis/networking.k8s.io/v1/ingressclasses/${className}`).catch(() => {});
      await api("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
    }
  });

  test("ready once its native listeners serve the routes; an Ingress is routed, and a change is followed", async () => {
    await eventually("readyz", async () => assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 200, output.slice(-2000)));
    assert.match(output, /"dataPlane":"native"/);
    await eventually("routed", async () => assert.equal(await answer("web.test"), "200 a"));
    // bound to `::` (no --bind-address): IPv6 clients are served as IPv4 ones
    const v6 = await rawExchange6(ports.http, "GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
    assert.equal(statusOf(v6), 200, v6.slice(0, 200));
    assert.equal(await answer("other.test"), "404");
    await writeWithFreshVersion(kc, `${ingressPath}/web`, (resourceVersion) => api("PUT", `${ingressPath}/web`, { ...ingress("svc-b"), metadata: { name: "web", namespace: ns, resourceVersion } }));
    await eventually("changed Ingress served", async () => assert.equal(await answer("web.test"), "200 b"));
    // counted natively, read into the registry at the scrape
    const metrics = (await send(ports.metrics, { path: "/metrics" })).body.toString();
    assert.match(metrics, new RegExp(`bollard_ingress_requests_total\\{ingress="${ns}/web",service="svc-a",status="2xx"\\} [1-9]`));
    assert.match(metrics, new RegExp(`bollard_ingress_requests_total\\{ingress="${ns}/web",service="svc-b",status="2xx"\\} [1-9]`));
    assert.match(metrics, /bollard_ingress_requests_total\{ingress="",service="",status="4xx"\} [1-9]/);
    assert.match(metrics, /bollard_ingress_route_table_swaps_total [1-9]/);
  });

  test("`GET / HTTP/2.0` → 505, and it keeps serving", async () => {
    assert.equal(statusOf(await rawExchange(ports.http, "GET / HTTP/2.0\r\n\r\n")), 505);
    assert.equal(child.exitCode, null, output);
    assert.equal(await answer("web.test"), "200 b");
  });

  test("SIGTERM: a request in flight finishes, then it exits 0 and its ports are closed", async () => {
    // A POST whose body is half sent when SIGTERM arrives: draining lets it finish.
    const socket = connect(ports.http, "127.0.0.1");
    const reply: Buffer[] = [];
    socket.on("data", (c: Buffer) => reply.push(c));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write("POST /in-flight HTTP/1.1\r\nHost: web.test\r\nContent-Length: 10\r\n\r\n01234");
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    await eventually("not ready while draining", async () => {
      const r = await send(ports.metrics, { path: "/readyz" }).catch(() => ({ status: 0 }));
      assert.notEqual(r.status, 200);
    });
    // write, not end: a client that half-closes has left, and its request is abandoned (as with Node and nginx)
    socket.write("56789");
    await closed; // the proxy answers with `connection: close` while it shuts down
    assert.equal(statusOf(Buffer.concat(reply).toString("latin1")), 200, `${Buffer.concat(reply).toString("latin1")}\n${output.slice(-3000)}`);
    assert.equal(await exited, 0, output.slice(-4000));
    await assert.rejects(send(ports.http, { host: "web.test" }), /ECONNREFUSED/);
  });
});
