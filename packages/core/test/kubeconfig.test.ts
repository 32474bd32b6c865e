import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { createKubeConfig, KubeConfigError } from "../src/index.ts";

const config = (name: string, server: string) => `apiVersion: v1
kind: Config
clusters: [{name: ${name}, cluster: {server: "${server}"}}]
users: [{name: ${name}, user: {token: t-${name}}}]
contexts: [{name: ${name}, context: {cluster: ${name}, user: ${name}}}]
current-context: ${name}
`;

describe("createKubeConfig", () => {
  let dir: string;
  const saved = { KUBECONFIG: process.env.KUBECONFIG, host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bollard-kubeconfig-"));
    await writeFile(join(dir, "one"), config("one", "https://one.example:6443"));
    await writeFile(join(dir, "two"), config("two", "https://two.example:6443"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  afterEach(() => {
    for (const [key, value] of [
      ["KUBECONFIG", saved.KUBECONFIG],
      ["KUBERNETES_SERVICE_HOST", saved.host],
      ["KUBERNETES_SERVICE_PORT", saved.port],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it("loads the given file over env KUBECONFIG", () => {
    process.env.KUBECONFIG = join(dir, "two");
    assert.equal(createKubeConfig({ kubeconfig: join(dir, "one") }).getCurrentCluster()?.server, "https://one.example:6443");
  });

  it("falls back to env KUBECONFIG, merging a list with the first file's context current", () => {
    process.env.KUBECONFIG = [join(dir, "one"), join(dir, "two")].join(delimiter);
    const kubeConfig = createKubeConfig();
    assert.equal(kubeConfig.getCurrentCluster()?.server, "https://one.example:6443");
    assert.deepEqual(kubeConfig.getContexts().map((c) => c.name), ["one", "two"]);
  });

  it("names a missing file", () => {
    assert.throws(() => createKubeConfig({ kubeconfig: join(dir, "absent") }), (error: unknown) => {
      return error instanceof KubeConfigError && error.message.includes(join(dir, "absent"));
    });
  });

  it("explains why it cannot fall back to in-cluster outside a cluster", () => {
    delete process.env.KUBECONFIG;
    delete process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_PORT;
    assert.throws(() => createKubeConfig(), (error: unknown) => {
      return error instanceof KubeConfigError && /not in a cluster/.test(error.message);
    });
  });
});

describe("what loading @bollard/core costs", () => {
  it("loads client-node's KubeConfig without its generated API or undici (60 MiB of RSS it would cost every process)", () => {
    // A fresh process records every module URL it loads, then imports @bollard/core and reads a kubeconfig.
    const script = `
      import { registerHooks } from "node:module";
      const loaded = [];
      registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
      const { createKubeConfig } = await import(${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)});
      process.env.KUBECONFIG = process.argv[1];
      createKubeConfig();
      // Node's own undici (its fetch and WebSocket) is no file: a built-in, in Node's list.
      if (process.moduleLoadList.some((m) => m.includes("undici"))) loaded.push("node:internal/deps/undici/undici");
      process.stdout.write(JSON.stringify(loaded));`;
    const dir = mkdtempSync(join(tmpdir(), "bollard-kubeconfig-"));
    try {
      const file = join(dir, "config");
      writeFileSync(file, config("one", "https://one.example:6443"));
      const loaded = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script, file]).toString()) as string[];
      assert.ok(loaded.some((url) => url.endsWith("/@kubernetes/client-node/dist/config.js")), "client-node's KubeConfig was loaded");
      assert.deepEqual(
        // (gen/rxjsStub.js is a few lines client-node's middleware needs)
        loaded.filter((url) => (url.includes("/client-node/dist/gen/") && !url.endsWith("/gen/rxjsStub.js")) || url.includes("/node_modules/undici/") || url.endsWith("deps/undici/undici")),
        [],
        "neither the generated API nor undici (client-node's or Node's)",
      );
      // Loaded on first use only (packages/core/README.md "Memory"): yaml (manifests), node-forge (self-signed
      // certificates), the OIDC auth provider's openid-client and jose, prom-client's @opentelemetry/api, client-node's
      // SOCKS proxy agent (socks-proxy-agent, agent-base, socks, ip-address, smart-buffer) and the gcp and azure auth
      // providers' jsonpath-plus. (js-yaml is: this kubeconfig is a file.)
      assert.ok(loaded.some((url) => url.endsWith("/prom-client/lib/metrics/processCpuTotal.js")), "prom-client's default metrics were loaded");
      assert.ok(loaded.some((url) => url.includes("/node_modules/js-yaml/")), "js-yaml was loaded for the kubeconfig file");
      assert.deepEqual(
        loaded.filter((url) =>
          /\/node_modules\/(yaml|node-forge|openid-client|jose|oauth4webapi|@opentelemetry\/api|socks-proxy-agent|agent-base|socks|ip-address|smart-buffer|jsonpath-plus)\//.test(url),
        ),
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what @bollard/core loads on first use", () => {
  it("a kubeconfig user with auth-provider oidc: the real provider, loaded by its first request", async () => {
    // An ID token that expires in 2100 (unsigned: the provider only reads its expiry before using it as is).
    const idToken = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"exp":4102444800}').toString("base64url")}.`;
    const dir = mkdtempSync(join(tmpdir(), "bollard-kubeconfig-oidc-"));
    try {
      const file = join(dir, "config");
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443" } }],
          users: [{ name: "u", user: { "auth-provider": { name: "oidc", config: { "client-id": "x", "id-token": idToken, "idp-issuer-url": "https://127.0.0.1:1" } } } }],
          contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
          "current-context": "x",
        }),
      );
      const script = `
        import { registerHooks } from "node:module";
        let oidc = 0;
        registerHooks({ load(url, context, next) { if (url.includes("/node_modules/openid-client/")) oidc++; return next(url, context); } });
        const { createKubeConfig } = await import(${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)});
        const kc = createKubeConfig({ kubeconfig: process.argv[1] });
        const before = oidc;
        const opts = {};
        await kc.applyToHTTPSOptions(opts);
        process.stdout.write(JSON.stringify({ before, after: oidc, authorization: opts.headers?.Authorization }));`;
      const result = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script, file]).toString()) as { before: number; after: number; authorization: string };
      assert.equal(result.before, 0);
      assert.ok(result.after > 0, "openid-client loaded for the request");
      assert.equal(result.authorization, `Bearer ${idToken}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a cluster with a SOCKS proxy-url: client-node's SocksProxyAgent, loaded by the first request", () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-kubeconfig-socks-"));
    try {
      const file = join(dir, "config");
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", "proxy-url": "socks5h://127.0.0.1:1080" } }],
          users: [{ name: "u", user: { token: "t" } }],
          contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
          "current-context": "x",
        }),
      );
      const script = `
        import { registerHooks } from "node:module";
        let socks = 0;
        registerHooks({ load(url, context, next) { if (url.includes("/node_modules/socks-proxy-agent/")) socks++; return next(url, context); } });
        const { createKubeConfig } = await import(${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)});
        const kc = createKubeConfig({ kubeconfig: process.argv[1] });
        const before = socks;
        const opts = {};
        await kc.applyToHTTPSOptions(opts);
        process.stdout.write(JSON.stringify({ before, after: socks, agent: opts.agent?.constructor.name, proxy: opts.agent?.proxy }));`;
      const result = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script, file]).toString()) as { before: number; after: number; agent: string; proxy: { host: string; port: number; type: number } };
      assert.equal(result.before, 0);
      assert.ok(result.after > 0, "socks-proxy-agent loaded for the request");
      assert.equal(result.agent, "SocksProxyAgent");
      assert.deepEqual({ host: result.proxy.host, port: result.proxy.port, type: result.proxy.type }, { host: "127.0.0.1", port: 1080, type: 5 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prom-client's exemplar API: the real @opentelemetry/api behind the stand-in", async () => {
    const { createRequire } = await import("node:module");
    const require = createRequire(import.meta.url);
    const standIn = require("../src/health/otel-on-demand.cjs") as { trace: { getSpan: unknown }; context: { active: () => unknown } };
    const real = require("@opentelemetry/api") as { trace: unknown; context: unknown };
    assert.equal(standIn.trace, real.trace);
    assert.equal(standIn.context, real.context);
  });
});
