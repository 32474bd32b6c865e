// The user story end to end in the lab: MetalLB manifests, an app with an Ingress, curl from outside the
// cluster, HTTPS with SNI, a plain LoadBalancer Service, live Ingress changes, bad input, a controller
// restart, an API-server outage and, last, the failover of the announcing node.
import assert from "node:assert/strict";

import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { issueCertificate } from "@bollard/lab";
import { labPoolManifest, startLab, type Lab } from "@bollard/lab";
import { arpingMAC, curl, electedNode, eventually, events, serviceIPs, waitForServiceIP } from "./helpers.ts";
import { ingressNginxManifests } from "./ingress-nginx.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

describe("the user story in the lab", { timeout: 600_000 }, () => {
  let lab: Lab;
  let vip = "";
  const nodeNames = () => lab.network.nodes.map((n) => n.name);

  before(async () => {
    // the ingress also serves ingress-nginx's class by name, as during a switch-over (chart: ingress.migration.*)
    lab = await startLab({ nodes: 2, ingressArgs: ["--watch-ingress-class=nginx"], log: (l) => process.stdout.write(`# lab: ${l}\n`) });
  });
  after(async () => {
    if (lab) await lab.down();
  });

  const clientLoop = async (url: string, host: string, ms: number) => {
    const res = await lab.execClient(process.execPath, [join(here, "client-loop.ts"), url, host, String(ms)], { timeoutMs: ms + 30_000 });
    return JSON.parse(res.stdout) as { ok: number; failed: number; errors: Record<string, number>; bodies: Record<string, number> };
  };

  it("1. gives the ingress an address, serves demo.local from both backends, and ARP answers from the elected node", async () => {
    const net = lab.network.prefixV4;
    const pool = labPoolManifest(net);
    const applied = await lab.kubectl(["apply", "-f", "-"], pool);
    assert.equal(applied.code, 0, applied.stderr);
    await lab.kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);
    vip = await waitForServiceIP(lab, "metallb-system", "bollard-ingress");
    assert.ok(vip.startsWith(`${net}.2`), `address ${vip} comes from the pool`);
    await eventually("the Ingress ADDRESS", async () => {
      const ing = JSON.parse((await lab.kubectl(["get", "ingress", "demo", "-o", "json"])).stdout);
      return ing.status?.loadBalancer?.ingress?.[0]?.ip === vip ? true : undefined;
    });
    const bodies = new Set<string>();
    await eventually("demo.local answering through the address", async () => {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      return r.code === 0 && r.body.startsWith("demo-") ? true : undefined;
    });
    for (let i = 0; i < 12; i++) {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      assert.equal(r.code, 0);
      bodies.add(r.body);
    }
    assert.deepEqual([...bodies].sort(), ["demo-node1", "demo-node2"], "both backends answer");
    const elected = electedNode(nodeNames(), vip);
    const mac = await arpingMAC(lab, vip);
    assert.equal(mac, lab.network.nodes.find((n) => n.name === elected)?.mac, `arping ${vip} sees ${elected}'s MAC`);
  });

  it("2. serves HTTPS with the Secret's certificate for its SNI name and the default certificate otherwise", async () => {
    const cert = issueCertificate({ commonName: "secure.local", dnsNames: ["secure.local"], usage: "server" });
    const caFile = join(lab.dir, "secure-ca.crt");
    await writeFile(caFile, cert.certPem);
    await lab.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: { name: "secure-tls", namespace: "default" },
      data: { "tls.crt": Buffer.from(cert.certPem).toString("base64"), "tls.key": Buffer.from(cert.keyPem).toString("base64") },
    }));
    await lab.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "secure", namespace: "default" },
      spec: {
        tls: [{ hosts: ["secure.local"], secretName: "secure-tls" }],
        rules: [{ host: "secure.local", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "demo", port: { name: "http" } } } }] } }],
      },
    }));
    const r = await eventually("https://secure.local verified with the Secret's certificate", async () => {
      const res = await curl(lab, ["--cacert", caFile, "--resolve", `secure.local:443:${vip}`, "https://secure.local/"]);
      return res.code === 0 ? res : undefined;
    });
    assert.match(r.body, /^demo-node\d$/);
    const other = await lab.execClient("openssl", ["s_client", "-connect", `${vip}:443`, "-servername", "other.example"], {
      allowFailure: true,
      timeoutMs: 10_000,
    });
    const subject = /subject=(.*)/.exec(other.stdout)?.[1] ?? "";
    assert.ok(subject !== "" && !subject.includes("secure.local"), `no SNI match → default certificate, got "${subject}"`);
    const redirect = await curl(lab, ["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve", `secure.local:80:${vip}`, "http://secure.local/x"]);
    assert.equal(redirect.body, "308 https://secure.local/x", "HTTP redirects to HTTPS for a TLS host");
    const plain = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
    assert.match(plain.body, /^demo-node\d$/, "hosts without TLS keep serving plain HTTP");
  });

  it("3. reaches a LoadBalancer Service without an Ingress on its own address", async () => {
    await lab.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "plain", namespace: "default" },
      spec: { type: "LoadBalancer", selector: { app: "demo" }, ports: [{ name: "http", port: 8080, targetPort: "http" }] },
    }));
    const ip = await waitForServiceIP(lab, "default", "plain");
    assert.notEqual(ip, vip);
    await eventually(`http://${ip}:8080/`, async () => {
      const r = await curl(lab, [`http://${ip}:8080/`]);
      return r.code === 0 && /^demo-node\d$/.test(r.body) ? true : undefined;
    });
  });

  it("4. changes an Ingress under a running client loop with zero failed requests", async () => {
    const loop = clientLoop(`http://${vip}/`, "demo.local", 6000);
    for (let i = 0; i < 5; i++) {
      await lab.kubectl(["annotate", "--overwrite", "ingress", "demo", `bollard.dev/revision=${i}`]);
      await lab.kubectl(["patch", "ingress", "demo", "--type=json", "-p",
        JSON.stringify([{ op: "add", path: "/spec/rules/0/http/paths/-", value: { path: `/v${i}`, pathType: "Prefix", backend: { service: { name: "demo", port: { name: "http" } } } } }])]);
    }
    const result = await loop;
    process.stdout.write(`# client loop during Ingress changes: ${JSON.stringify(result)}\n`);
    assert.ok(result.ok > 0);
    assert.equal(result.failed, 0, JSON.stringify(result.errors));
  });

  it("5. reports bad input and keeps every route and address working", async () => {
    const before = await serviceIPs(lab, "metallb-system", "bollard-ingress");
    const bad = await lab.kubectl(["apply", "-f", "-"], `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: overlapping, namespace: metallb-system}
spec:
  addresses: [${lab.network.prefixV4}.210/31]
`);
    assert.equal(bad.code, 0, "the schema accepts it; the controller must report the overlap");
    await eventually("a Warning Event on the overlapping pool", async () => {
      const evs = await events(lab, "metallb-system", "IPAddressPool", "overlapping");
      return evs.some((e) => e.type === "Warning" && /overlap/i.test(e.message)) ? true : undefined;
    });
    await eventually("ConfigValid=False on the overlapping pool", async () => {
      const pool = JSON.parse((await lab.kubectl(["get", "ipaddresspool", "-n", "metallb-system", "overlapping", "-o", "json"])).stdout);
      const cond = (pool.status?.conditions ?? []).find((c: { type: string }) => c.type === "ConfigValid");
      return cond?.status === "False" && /overlap/i.test(cond.message ?? "") ? true : undefined;
    });
    await lab.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "broken", namespace: "default" },
      spec: { ingressClassName: "bollard", rules: [{ host: "broken.local", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "missing", port: { number: 80 } } } }] } }] },
    }));
    await eventually("a Warning Event on the broken Ingress", async () => {
      const evs = await events(lab, "default", "Ingress", "broken");
      return evs.some((e) => e.type === "Warning") ? true : undefined;
    });
    try {
    const broken = await curl(lab, ["-o", "/dev/null", "-w", "%{http_code}", "--resolve", `broken.local:80:${vip}`, "http://broken.local/"]);
    assert.equal(broken.body, "503");
    const good = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
    assert.match(good.body, /^demo-node\d$/);
    assert.deepEqual(await serviceIPs(lab, "metallb-system", "bollard-ingress"), before);
    } finally {
      await lab.kubectl(["delete", "ipaddresspool", "-n", "metallb-system", "overlapping"]);
      await lab.kubectl(["delete", "ingress", "broken"]);
    }
  });

  it("6. serves ingress-nginx Ingresses of class nginx unchanged: rewrite, basic auth, allow-lists, canaries, CORS, redirects", async () => {
    const manifests = ingressNginxManifests(lab.network.client.ipv4);
    const applied = await lab.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: manifests }));
    assert.equal(applied.code, 0, applied.stderr);
    const get = (host: string, path: string, extra: string[] = []) =>
      lab.execClient("curl", ["-sS", "--max-time", "5", "-o", "/dev/null", "-D", "-", "--resolve", `${host}:80:${vip}`, ...extra, `http://${host}${path}`], { allowFailure: true, timeoutMs: 10_000 });
    const status = async (host: string, path: string, extra: string[] = []) => Number(/^HTTP\/[\d.]+ (\d+)/.exec((await get(host, path, extra)).stdout)?.[1] ?? 0);
    const header = async (host: string, path: string, name: string, extra: string[] = []) =>
      new RegExp(`^${name}: (.*)$`, "im").exec((await get(host, path, extra)).stdout)?.[1]?.trim();
    // the last Ingress applied is served once every one is (one table)
    await eventually("the nginx-class Ingresses served", async () => ((await status("snippet.local", "/")) === 200 ? true : undefined), 30_000);

    assert.equal(await header("rewrite.local", "/api/items?page=2", "x-request-uri"), "/items?page=2", "rewrite-target /$2");
    assert.equal(await status("basic.local", "/"), 401);
    assert.match((await header("basic.local", "/", "www-authenticate")) ?? "", /^Basic realm="Authentication Required"/);
    assert.equal(await status("basic.local", "/", ["-u", "admin:wrong"]), 401);
    assert.equal(await status("basic.local", "/", ["-u", "admin:s3cret"]), 200);
    assert.equal(await status("allowed.local", "/"), 200);
    assert.equal(await status("denied.local", "/"), 403);
    assert.equal(await header("canary.local", "/", "x-backend"), "demo-node1");
    assert.equal(await header("canary.local", "/", "x-backend", ["-H", "X-Canary: always"]), "demo-node2");
    assert.equal(await header("canary.local", "/", "x-backend", ["-H", "X-Canary: never"]), "demo-node1");
    for (let i = 0; i < 4; i++) assert.equal(await header("weight.local", "/", "x-backend"), "demo-node2", "canary-weight 100");
    const preflight = ["-X", "OPTIONS", "-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: POST"];
    assert.equal(await status("cors.local", "/", preflight), 204);
    assert.equal(await header("cors.local", "/", "access-control-allow-origin", preflight), "https://app.example.com");
    assert.equal(await status("moved.local", "/anything"), 301);
    assert.equal(await header("moved.local", "/anything", "location"), "https://new.example.com/shop");
    assert.equal(await status("approot.local", "/"), 302);
    assert.match((await header("approot.local", "/", "location")) ?? "", /\/app$/);
    assert.equal(await status("broken.local", "/"), 503, "fail closed: never served unprotected");
    await eventually("Warning Events for the broken and the unsupported annotation", async () => {
      const broken = await events(lab, "default", "Ingress", "broken-auth");
      const snippet = await events(lab, "default", "Ingress", "snippet");
      return broken.some((e) => e.type === "Warning" && e.reason === "InvalidAnnotation" && e.message.includes("auth-url")) &&
        snippet.some((e) => e.type === "Warning" && e.reason === "UnsupportedAnnotation" && e.message.includes("configuration-snippet"))
        ? true
        : undefined;
    });
    // the rest of the cluster is untouched
    assert.equal((await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"])).code, 0);
  });

  it("7. keeps every address through a controller restart during Service churn", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `churn-${i}`);
    const svc = (name: string) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "default" },
      spec: { type: "LoadBalancer", selector: { app: "demo" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    });
    for (const n of names.slice(0, 6)) await lab.kubectl(["apply", "-f", "-"], JSON.stringify(svc(n)));
    const before = new Map<string, string>();
    for (const n of names.slice(0, 6)) before.set(n, await waitForServiceIP(lab, "default", n));
    const restart = lab.restartController();
    await lab.kubectl(["delete", "svc", "churn-0"]);
    for (const n of names.slice(6)) await lab.kubectl(["apply", "-f", "-"], JSON.stringify(svc(n)));
    await restart;
    for (const n of names.slice(6)) await waitForServiceIP(lab, "default", n);
    for (const n of names.slice(1, 6)) assert.deepEqual(await serviceIPs(lab, "default", n), [before.get(n)], `${n} kept its address`);
    assert.deepEqual(await serviceIPs(lab, "metallb-system", "bollard-ingress"), [vip]);
    await lab.kubectl(["delete", "svc", ...names.slice(1)]);
  });

  it("8. keeps traffic flowing while the API server is down, and applies changes once it is back", async () => {
    await lab.controlPlane.stopApiServer();
    try {
      const result = await clientLoop(`http://${vip}/`, "demo.local", 3000);
      process.stdout.write(`# client loop with the API server down: ${JSON.stringify(result)}\n`);
      assert.ok(result.ok > 0);
      assert.equal(result.failed, 0, JSON.stringify(result.errors));
    } finally {
      await lab.controlPlane.startApiServer();
    }
    await lab.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "after-outage", namespace: "default" },
      spec: { rules: [{ host: "after.local", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "demo", port: { number: 80 } } } }] } }] },
    }));
    await eventually("a change applied after the outage", async () => {
      const r = await curl(lab, ["--resolve", `after.local:80:${vip}`, "http://after.local/"]);
      return r.code === 0 && /^demo-node\d$/.test(r.body) ? true : undefined;
    }, 60_000);
  });

  it("9. moves the address to the other node when the announcing node dies", async () => {
    const elected = electedNode(nodeNames(), vip) as string;
    const survivor = lab.network.nodes.find((n) => n.name !== elected);
    assert.ok(survivor);
    await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
    const started = Date.now();
    await lab.stopNode(elected);
    await eventually("demo.local answering through the surviving node", async () => {
      const r = await curl(lab, ["--max-time", "1", "--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      return r.code === 0 && r.body === `demo-${survivor.name}` ? true : undefined;
    }, 60_000, 50);
    process.stdout.write(`# failover: first success through ${survivor.name} ${Date.now() - started} ms after stopping ${elected}\n`);
    const neigh = JSON.parse((await lab.execClient("ip", ["-j", "neigh", "show", vip])).stdout) as { lladdr?: string }[];
    assert.equal(neigh[0]?.lladdr, survivor.mac, "the client's neighbour entry now points at the survivor");
  });
});

