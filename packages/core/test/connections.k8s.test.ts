// How kubeRequest and kubeWatch use connections to the real API server: requests share kept-alive TLS
// connections, watches have their own, and authentication is still applied to every request.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { kubeRequest } from "../src/index.ts";
import { kubeAgents, kubeWatch, MAX_REQUEST_CONNECTIONS } from "../src/kube/request.ts";
import { configMaps, createNamespace, deleteNamespace, eventually, putConfigMap, testKubeConfig } from "./k8s-helpers.ts";

/** Counts the TLS connections an agent opens (each emits its key material once or more). */
function countConnections(agent: http.Agent): () => number {
  const sockets = new Set<unknown>();
  agent.on("keylog", (_line: Buffer, socket: unknown) => sockets.add(socket));
  return () => sockets.size;
}

describe("connections to the API server", () => {
  let shared: KubeConfig;
  let ns: string;
  let scratch: string;

  before(async () => {
    shared = testKubeConfig();
    ns = await createNamespace(shared, "core-conn");
    scratch = await mkdtemp(join(tmpdir(), "bollard-core-conn-"));
  });
  after(async () => {
    await deleteNamespace(shared, ns);
    await rm(scratch, { recursive: true, force: true });
  });

  it("sequential requests share one kept-alive TLS connection", async () => {
    const kubeConfig = testKubeConfig();
    const connections = countConnections(kubeAgents(kubeConfig).requests);
    for (let i = 0; i < 50; i++) {
      const namespace = await kubeRequest<{ metadata: { name: string } }>(kubeConfig, { path: `/api/v1/namespaces/${ns}` });
      assert.equal(namespace.metadata.name, ns);
    }
    await putConfigMap(kubeConfig, ns, "written-on-the-same-connection", { v: "1" });
    assert.equal(connections(), 1);
  });

  it("concurrent requests open at most MAX_REQUEST_CONNECTIONS connections, and reuse them afterwards", async () => {
    const kubeConfig = testKubeConfig();
    const connections = countConnections(kubeAgents(kubeConfig).requests);
    const burst = () => Promise.all(Array.from({ length: 3 * MAX_REQUEST_CONNECTIONS }, () => kubeRequest(kubeConfig, { path: configMaps(ns) })));
    await burst();
    const opened = connections();
    assert.ok(opened >= 1 && opened <= MAX_REQUEST_CONNECTIONS, `${opened} connections`);
    await burst();
    assert.equal(connections(), opened, "the second burst opened no connection");
  });

  it("watches have connections of their own: more watches than request connections leave requests unaffected", async () => {
    const kubeConfig = testKubeConfig();
    const agents = kubeAgents(kubeConfig);
    const requestConnections = countConnections(agents.requests);
    const watchConnections = countConnections(agents.watches);
    const stop = new AbortController();
    const count = MAX_REQUEST_CONNECTIONS + 8;
    const seen = Array.from({ length: count }, () => new Set<string>());
    const watches = seen.map((names) =>
      kubeWatch(kubeConfig, { path: configMaps(ns), query: {}, signal: stop.signal, idleTimeoutMs: 120_000 }, (event) => {
        names.add((event.object as { metadata: { name: string } }).metadata.name);
      }).catch(() => undefined),
    );
    try {
      await putConfigMap(kubeConfig, ns, "watched", { v: "1" });
      await eventually(() => seen.every((names) => names.has("watched")), `all ${count} watches see the ConfigMap`);
      // Every watch still holds its connection; requests (with their default 30 s deadline) go through.
      const listed = await Promise.all(
        Array.from({ length: MAX_REQUEST_CONNECTIONS }, () => kubeRequest<{ items: unknown[] }>(kubeConfig, { path: configMaps(ns) })),
      );
      assert.ok(listed.every((list) => list.items.length >= 1));
      assert.equal(watchConnections(), count);
      assert.ok(requestConnections() <= MAX_REQUEST_CONNECTIONS);
    } finally {
      stop.abort();
      await Promise.all(watches);
    }
  });

  it("authentication is applied to every request while the connection is reused (exec plugin)", async () => {
    const serviceAccounts = `/api/v1/namespaces/${ns}/serviceaccounts`;
    const tokens = new Map<string, string>();
    for (const name of ["first", "second"]) {
      await kubeRequest(shared, { method: "POST", path: serviceAccounts, body: { metadata: { name } } });
      const review = await kubeRequest<{ status: { token: string } }>(shared, {
        method: "POST",
        path: `${serviceAccounts}/${name}/token`,
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 600 } },
      });
      tokens.set(name, review.status.token);
    }
    // An exec plugin whose credential has already expired, so client-node runs it for every request.
    const credentialFile = join(scratch, "credential.json");
    const issue = (name: string) =>
      writeFile(
        credentialFile,
        JSON.stringify({
          apiVersion: "client.authentication.k8s.io/v1",
          kind: "ExecCredential",
          status: { token: tokens.get(name), expirationTimestamp: "2000-01-01T00:00:00Z" },
        }),
      );
    const cluster = shared.getCurrentCluster();
    assert.ok(cluster);
    const pluginConfig = new KubeConfig();
    pluginConfig.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "plugin", exec: { apiVersion: "client.authentication.k8s.io/v1", command: "cat", args: [credentialFile], interactiveMode: "Never" } }],
      contexts: [{ name: "plugin", cluster: cluster.name, user: "plugin" }],
      currentContext: "plugin",
    });
    const whoAmI = async () =>
      (
        await kubeRequest<{ status: { userInfo: { username: string } } }>(pluginConfig, {
          method: "POST",
          path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
          body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
        })
      ).status.userInfo.username;
    const connections = countConnections(kubeAgents(pluginConfig).requests);
    const names: string[] = [];
    for (const name of ["first", "first", "second", "second", "first"]) {
      await issue(name);
      names.push(await whoAmI());
    }
    const account = (name: string) => `system:serviceaccount:${ns}:${name}`;
    assert.deepEqual(names, ["first", "first", "second", "second", "first"].map(account));
    assert.equal(connections(), 1);
  });
});
