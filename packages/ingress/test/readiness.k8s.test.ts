// /readyz of `bollard ingress`: ready only once a route table is built AND the listeners serve it. With no API
// server to build a table from, the listeners answer (404) but /readyz says 503; with one it turns 200; on
// SIGTERM it turns 503 while in-flight requests drain (the health server stays up until they are done).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import { send } from "./helpers/client.ts";
import { type BackendNamespace, createBackendNamespace } from "./helpers/netns.ts";
import { eventually, freePort } from "./helpers/wait.ts";

const kubeconfigPath = process.env.BOLLARD_KUBECONFIG;
const suffix = randomBytes(3).toString("hex");
const bollard = join(import.meta.dirname, "..", "..", "cli", "bin", "bollard.ts");

function startIngress(kubeconfig: string, namespace: string) {
  return Promise.all([freePort(), freePort(), freePort()]).then(([http, https, metrics]) => {
    let output = "";
    const child = spawn(
      process.execPath,
      [bollard, "ingress", "--kubeconfig", kubeconfig, "--watch-namespace", namespace, "--bind-address", "127.0.0.1",
        "--http-port", String(http), "--https-port", String(https), "--metrics-port", String(metrics), "--shutdown-grace", "20"],
      { env: { ...process.env, POD_NAMESPACE: namespace, POD_NAME: `readiness-${suffix}` }, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    return { child, ports: { http, https, metrics }, output: () => output };
  });
}

const stop = (child: ChildProcess | undefined) => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
};

describe("/readyz", () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test("listeners bound but no route table (no API server to build one from) → 503", async () => {
    // A kubeconfig whose API server is a closed loopback port: informers never sync, so no table is built.
    const dir = mkdtempSync(join(tmpdir(), "bollard-readyz-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: none, cluster: {server: "https://127.0.0.1:${await freePort()}", insecure-skip-tls-verify: true}}]\nusers: [{name: none, user: {token: none}}]\ncontexts: [{name: none, context: {cluster: none, user: none}}]\ncurrent-context: none\n`,
    );
    const { child, ports, output } = await startIngress(kubeconfig, `readyz-${suffix}`);
    cleanups.push(() => stop(child));
    await eventually("health server up", async () => assert.equal((await send(ports.metrics, { path: "/healthz" })).status, 200));
    assert.equal((await send(ports.http, { host: "any.test" })).status, 404, "the HTTP listener is bound and answers");
    assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 503, output());
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, output().slice(-4000));
  });

  test("with a table: 200; on SIGTERM: 503 while an in-flight request drains, which then completes", async () => {
    assert.ok(kubeconfigPath, "BOLLARD_KUBECONFIG must point at the test control plane (run through test/run.ts)");
    const kc = createKubeConfig({ kubeconfig: kubeconfigPath });
    const ns = `readyz-k8s-${suffix}`;
    const api = (method: "POST" | "DELETE", path: string, body?: unknown) => kubeRequest(kc, { method, path, ...(body === undefined ? {} : { body }) });
    const backends: BackendNamespace = createBackendNamespace();
    cleanups.push(() => backends.destroy());
    await backends.startBackend("drain", 8081);
    await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    cleanups.push(async () => {
      await api("DELETE", `/api/v1/namespaces/${ns}`).catch(() => {});
    });
    await api("POST", `/api/v1/namespaces/${ns}/services`, { apiVersion: "v1", kind: "Service", metadata: { name: "drain" }, spec: { ports: [{ name: "http", port: 80 }] } });
    await api("POST", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "drain-1", labels: { "kubernetes.io/service-name": "drain" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8081, protocol: "TCP" }],
      endpoints: [{ addresses: [backends.address] }],
    });
    await api("POST", `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "drain", annotations: { "kubernetes.io/ingress.class": "bollard" } },
      spec: { rules: [{ host: "drain.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "drain", port: { number: 80 } } } }] } }] },
    });
    const { child, ports, output } = await startIngress(kubeconfigPath, ns);
    cleanups.push(() => stop(child));
    await eventually("ready", async () => assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 200));
    await eventually("route served", async () => assert.equal((await send(ports.http, { host: "drain.test" })).status, 200));

    // A request in flight: its head is in (the proxy said 100 Continue), its body not yet.
    const socket: Socket = connect(ports.http, "127.0.0.1");
    let received = "";
    socket.setEncoding("latin1");
    socket.on("data", (c: string) => {
      received += c;
    });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write("POST /drain HTTP/1.1\r\nHost: drain.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    await eventually("100 Continue", async () => assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\n/));

    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    await eventually("not ready while draining", async () => assert.equal((await send(ports.metrics, { path: "/readyz" })).status, 503));
    // write, not end: a client that half-closes has left, and its request is abandoned (as with Node and nginx).
    socket.write("body");
    await closed; // the proxy answers with `connection: close` while it shuts down
    assert.match(received, /HTTP\/1\.1 200 OK\r\n/, `${received}\n${output().slice(-3000)}`);
    assert.match(received, /"bodyBytes":4/);
    assert.equal(await exited, 0, output().slice(-4000));
  });
});
