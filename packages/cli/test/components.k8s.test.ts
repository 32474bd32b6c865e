// The one wiring of the three long-running commands, run as users run them against the real API server: the same
// shared flags, the same kubeconfig order, the same metrics server — plain HTTP by default, HTTPS with TokenReview +
// SubjectAccessReview under --metrics-secure (a token allowed → 200, a token without the RBAC → 403, none → 401) —
// and the same clean exit on SIGTERM.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import { runBollard } from "./helpers.ts";

const kubeconfig = process.env.BOLLARD_KUBECONFIG as string;
assert.ok(kubeconfig, "BOLLARD_KUBECONFIG must be set: run through `node test/run.ts`");
const admin = createKubeConfig({ kubeconfig });
const bin = join(import.meta.dirname, "..", "bin", "bollard.ts");

type Started = { child: ChildProcess; port: number; exited: Promise<number | null> };

/** Starts `bollard ARGS…` and waits for its health server's log line, which names the port it picked. */
function startBollard(args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      let entry: { msg?: string; port?: number };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === "health server listening" && entry.port !== undefined) resolve({ child, port: entry.port, exited });
    });
    void exited.then((code) => reject(new Error(`bollard ${args[0]} exited with ${code} before listening: ${stderr}`)));
  });
}

type Answer = { status: number; body: string };

function scrape(port: number, secure: boolean, path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    // The self-signed certificate made at start: its key is what the test cannot check, the authorisation is.
    const options = { host: "127.0.0.1", port, path, headers, ...(secure ? { rejectUnauthorized: false } : {}) };
    const req = (secure ? https : http).get(options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

async function serviceAccountToken(namespace: string, name: string): Promise<string> {
  await kubeRequest(admin, { method: "POST", path: `/api/v1/namespaces/${namespace}/serviceaccounts`, body: { metadata: { name } } });
  const request = await kubeRequest<{ status: { token: string } }>(admin, {
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    body: { spec: { expirationSeconds: 3600 } },
  });
  return request.status.token;
}

async function stop(started: Started): Promise<number | null> {
  started.child.kill("SIGTERM");
  return started.exited;
}

describe("the long-running commands share one wiring", () => {
  const namespace = `wiring-${randomBytes(3).toString("hex")}`;
  const reader = `${namespace}-metrics-reader`;
  let scraper = "";
  let stranger = "";
  const commands: Record<string, string[]> = {
    controller: ["controller", `--config-namespace=${namespace}`],
    speaker: ["speaker", "--node-name=wiring-node", `--config-namespace=${namespace}`, "--bind-port=17946"],
    ingress: ["ingress", "--http-port=0", "--https-port=0", "--bind-address=127.0.0.1", `--watch-namespace=${namespace}`],
  };
  // The metric each component registers itself, so the scrape is known to be that component's registry.
  const ownMetric: Record<string, RegExp> = {
    controller: /^# TYPE bollard_/m,
    speaker: /^# TYPE bollard_/m,
    ingress: /^# TYPE bollard_ingress_/m,
  };

  before(async () => {
    await kubeRequest(admin, { method: "POST", path: "/api/v1/namespaces", body: { metadata: { name: namespace } } });
    scraper = await serviceAccountToken(namespace, "scraper");
    stranger = await serviceAccountToken(namespace, "stranger");
    await kubeRequest(admin, {
      method: "POST",
      path: "/apis/rbac.authorization.k8s.io/v1/clusterroles",
      body: { metadata: { name: reader }, rules: [{ nonResourceURLs: ["/metrics"], verbs: ["get"] }] },
    });
    await kubeRequest(admin, {
      method: "POST",
      path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
      body: {
        metadata: { name: reader },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: reader },
        subjects: [{ kind: "ServiceAccount", name: "scraper", namespace }],
      },
    });
  });

  after(async () => {
    await kubeRequest(admin, { method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${reader}` }).catch(() => {});
    await kubeRequest(admin, { method: "DELETE", path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/${reader}` }).catch(() => {});
    await kubeRequest(admin, { method: "DELETE", path: `/api/v1/namespaces/${namespace}` }).catch(() => {});
  });

  for (const [name, args] of Object.entries(commands)) {
    it(`bollard ${name} --metrics-secure: 200 to an allowed token, 403 without the RBAC, 401 without a token`, async () => {
      const started = await startBollard([...args, `--kubeconfig=${kubeconfig}`, "--metrics-port=0", "--metrics-secure", "--log-level=info"]);
      try {
        const allowed = await scrape(started.port, true, "/metrics", scraper);
        assert.equal(allowed.status, 200);
        assert.match(allowed.body, /^process_cpu_user_seconds_total /m);
        assert.match(allowed.body, ownMetric[name] as RegExp);
        assert.equal((await scrape(started.port, true, "/metrics", stranger)).status, 403);
        assert.equal((await scrape(started.port, true, "/metrics")).status, 401);
        // Probes stay open for the kubelet.
        assert.ok([200, 503].includes((await scrape(started.port, true, "/healthz")).status));
      } finally {
        assert.equal(await stop(started), 0);
      }
    });
  }

  it("without --metrics-secure the metrics are plain HTTP, for the lab", async () => {
    const started = await startBollard([...(commands.controller as string[]), `--kubeconfig=${kubeconfig}`, "--metrics-port=0", "--log-level=info"]);
    try {
      const answer = await scrape(started.port, false, "/metrics");
      assert.equal(answer.status, 200);
      assert.match(answer.body, /^process_cpu_user_seconds_total /m);
    } finally {
      assert.equal(await stop(started), 0);
    }
  });

  it("--kubeconfig wins over env KUBECONFIG, which wins over in-cluster, for every command", async () => {
    const missing = "/nonexistent/wiring-kubeconfig";
    for (const [name, args] of Object.entries(commands)) {
      // The flag: env KUBECONFIG (broken) is not read.
      const started = await startBollard([...args, `--kubeconfig=${kubeconfig}`, "--metrics-port=0", "--log-level=info"], { KUBECONFIG: missing });
      assert.equal(await stop(started), 0, name);
      // No flag: env KUBECONFIG is read before the in-cluster variables are looked at.
      const result = await runBollardWithEnv([...args, "--metrics-port=0"], { KUBECONFIG: missing, KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" });
      assert.equal(result.code, 2, `${name}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`^bollard ${name}: cannot load kubeconfig ${missing}`, "m"));
    }
  });

  it("refuses half a certificate and a certificate without --metrics-secure", async () => {
    for (const name of Object.keys(commands)) {
      const half = await runBollard([...(commands[name] as string[]), "--metrics-secure", "--metrics-tls-cert-file=/tmp/x.pem"]);
      assert.equal(half.code, 2);
      assert.match(half.stderr, /--metrics-tls-cert-file and --metrics-tls-key-file go together/);
      const plain = await runBollard([...(commands[name] as string[]), "--metrics-tls-cert-file=/tmp/x.pem", "--metrics-tls-key-file=/tmp/y.pem"]);
      assert.equal(plain.code, 2);
      assert.match(plain.stderr, /--metrics-tls-cert-file needs --metrics-secure/);
    }
  });
});

async function runBollardWithEnv(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stderr };
}
