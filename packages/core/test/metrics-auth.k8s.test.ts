// /metrics over HTTPS, authorised by the real API server with TokenReview + SubjectAccessReview (MetalLB v0.16's
// way, without kube-rbac-proxy). The server asks with a ServiceAccount token that holds only the two `create`
// rules the chart grants, so the chart's RBAC is what is tested.
import assert from "node:assert/strict";
import https from "node:https";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { Counter } from "prom-client";
import {
  createMetricsRegistry,
  createRequestAuthorizer,
  generateSelfSignedCertificate,
  type HealthServer,
  kubeRequest,
  startHealthServer,
} from "../src/index.ts";
import { createNamespace, deleteNamespace, testKubeConfig, testLogger } from "./k8s-helpers.ts";

const admin = testKubeConfig();
const certificate = generateSelfSignedCertificate("metrics.test", ["localhost"]);

async function serviceAccountToken(namespace: string, name: string): Promise<string> {
  await kubeRequest(admin, { method: "POST", path: `/api/v1/namespaces/${namespace}/serviceaccounts`, body: { metadata: { name } } });
  const request = await kubeRequest<{ status: { token: string } }>(admin, {
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  return request.status.token;
}

function tokenKubeConfig(token: string): KubeConfig {
  const cluster = admin.getCurrentCluster();
  assert.ok(cluster);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: "sa", token }],
    contexts: [{ name: "sa", cluster: cluster.name, user: "sa" }],
    currentContext: "sa",
  });
  return kubeConfig;
}

async function bind(name: string, rules: unknown[], namespace: string, serviceAccount: string): Promise<void> {
  await kubeRequest(admin, { method: "POST", path: "/apis/rbac.authorization.k8s.io/v1/clusterroles", body: { metadata: { name }, rules } });
  await kubeRequest(admin, {
    method: "POST",
    path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
    },
  });
}

type Answer = { status: number; body: string; authenticate: string | undefined };

function get(server: HealthServer, path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const req = https.get({ host: "127.0.0.1", port: server.port, path, headers, ca: certificate.cert, servername: "localhost" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, authenticate: res.headers["www-authenticate"] }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

describe("metrics over HTTPS with TokenReview + SubjectAccessReview", () => {
  const registry = createMetricsRegistry();
  new Counter({ name: "bollard_test_scrapes_total", help: "a metric to find", registers: [registry] }).inc();
  const clusterObjects: string[] = [];
  let namespace = "";
  let tokens: { component: string; scraper: string; stranger: string };
  let server: HealthServer;
  let uncached: HealthServer;
  let withoutRbac: HealthServer;

  before(async () => {
    namespace = await createNamespace(admin, "metrics-auth");
    tokens = {
      component: await serviceAccountToken(namespace, "component"),
      scraper: await serviceAccountToken(namespace, "scraper"),
      stranger: await serviceAccountToken(namespace, "stranger"),
    };
    // What the chart grants a component when metrics are secure, and what a Prometheus needs.
    const reviewer = `${namespace}-reviewer`;
    const reader = `${namespace}-reader`;
    clusterObjects.push(reviewer, reader);
    await bind(
      reviewer,
      [
        { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
        { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
      ],
      namespace,
      "component",
    );
    await bind(reader, [{ nonResourceURLs: ["/metrics"], verbs: ["get"] }], namespace, "scraper");
    const start = (kubeConfig: KubeConfig, cacheTtlMs?: number) =>
      startHealthServer({
        port: 0,
        host: "127.0.0.1",
        registry,
        isReady: () => true,
        logger: testLogger,
        secure: { certificate, authorize: createRequestAuthorizer({ kubeConfig, ...(cacheTtlMs === undefined ? {} : { cacheTtlMs }) }) },
      });
    server = await start(tokenKubeConfig(tokens.component));
    uncached = await start(tokenKubeConfig(tokens.component), 0);
    withoutRbac = await start(tokenKubeConfig(tokens.stranger));
  });

  after(async () => {
    await Promise.all([server?.close(), uncached?.close(), withoutRbac?.close()]);
    for (const name of clusterObjects) {
      await kubeRequest(admin, { method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}` }).catch(() => {});
      await kubeRequest(admin, { method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}` }).catch(() => {});
    }
    await deleteNamespace(admin, namespace);
  });

  it("serves the metrics to a token whose user may get /metrics", async () => {
    const answer = await get(server, "/metrics", tokens.scraper);
    assert.equal(answer.status, 200);
    assert.match(answer.body, /^bollard_test_scrapes_total 1$/m);
    assert.equal(server.secure, true);
  });

  it("answers 401 without a token, and with a token the API server does not know", async () => {
    const none = await get(server, "/metrics");
    assert.equal(none.status, 401);
    assert.equal(none.authenticate, 'Bearer realm="metrics"');
    assert.doesNotMatch(none.body, /bollard_test_scrapes_total/);
    assert.equal((await get(server, "/metrics", "not-a-token")).status, 401);
    assert.equal((await get(server, "/metrics", `${tokens.scraper.slice(0, -4)}AAAA`)).status, 401);
  });

  it("answers 403 to a valid token whose user lacks the RBAC", async () => {
    const answer = await get(server, "/metrics", tokens.stranger);
    assert.equal(answer.status, 403);
    assert.match(answer.body, new RegExp(`user=system:serviceaccount:${namespace}:stranger`));
    assert.doesNotMatch(answer.body, /bollard_test_scrapes_total/);
  });

  it("keeps the probes open: the kubelet carries no token", async () => {
    assert.equal((await get(server, "/healthz")).status, 200);
    assert.equal((await get(server, "/readyz")).status, 200);
  });

  it("asks again once the answer is no longer cached: a revoked binding is a 403", async () => {
    assert.equal((await get(uncached, "/metrics", tokens.scraper)).status, 200);
    await kubeRequest(admin, { method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${namespace}-reader` });
    // The RBAC authorizer works from an informer: the deletion reaches it shortly after the write.
    let status = 0;
    for (let attempt = 0; attempt < 200; attempt++) {
      status = (await get(uncached, "/metrics", tokens.scraper)).status;
      if (status === 403) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(status, 403);
  });

  it("answers 500, never the metrics, when its own credentials may not create reviews", async () => {
    const answer = await get(withoutRbac, "/metrics", tokens.scraper);
    assert.equal(answer.status, 500);
    assert.match(answer.body, /tokenreviews.*403/);
  });
});
