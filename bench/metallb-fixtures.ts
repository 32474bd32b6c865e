// `npx node bench/metallb-fixtures.ts`: Bollard's allocation fixtures (packages/controller/test/fixtures/
// allocation/NAME.yaml → NAME.json) run through MetalLB's controller (test/harness/build-metallb.sh, its
// manifest's args, webhook off) against a private kube-apiserver with MetalLB's CRDs, and where the two
// disagree. Per fixture: its pools and namespaces, a fresh controller, then its LoadBalancer Services created
// one at a time in file order, each waited for (up to 3 s) before the next — the order Bollard's fixtures
// allocate in. Fixtures about refused configuration (their JSON has `errors`) are skipped: MetalLB refuses
// those in its webhook, which does not run here. Prints a markdown table. Not a test.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, startControlPlane } from "@bollard/lab";
import YAML from "yaml";
import { startProcess } from "./lib/proc.ts";
import { createScope } from "./lib/scope.ts";

const root = join(import.meta.dirname, "..");
const fixtures = join(root, "packages/controller/test/fixtures/allocation");
const WAIT_MS = 3000;

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: { type?: string } };
type Expected = { services?: Array<{ namespace: string; name: string; ips: string[]; error?: string }>; errors?: unknown };

const dir = mkdtempSync(join(tmpdir(), "bollard-metallb-fixtures-"));
const cp = await startControlPlane({ dir: join(dir, "control-plane") });
const scope = createScope();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void Promise.allSettled([scope.close(), cp.stop()]).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
try {
  const build = join(root, "test/harness/build-metallb.sh");
  execFileSync("bash", [build], { stdio: "inherit" });
  const binDir = execFileSync("bash", [build, "--print-dir"]).toString().trim();
  const version = binDir.split("/").at(-1) as string;
  const moduleDir = (JSON.parse(execFileSync("go", ["mod", "download", "-json", `go.universe.tf/metallb@${version}`]).toString()) as { Dir: string }).Dir;
  const kubectl = (args: string[], input?: string) =>
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20, ...(input === undefined ? {} : { input }) }).toString();
  kubectl(["apply", "--server-side", "-f", join(moduleDir, "config/crd/bases")]);
  kubectl(["wait", "--for=condition=established", "--timeout=60s", "crd", "--all"]);
  kubectl(["create", "namespace", "metallb-system"]);
  // The controller creates the memberlist Secret only when it finds its own Deployment to own it; else it exits.
  kubectl(["create", "secret", "generic", "memberlist", "-n", "metallb-system", "--from-literal=secretkey=fixtures"]);

  const rows: string[] = [];
  let agreed = 0;
  let compared = 0;
  for (const file of readdirSync(fixtures).filter((f) => f.endsWith(".yaml")).sort()) {
    const name = file.replace(/\.yaml$/, "");
    const expected = JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8")) as Expected;
    if (name === "restore") {
      rows.push(`| ${name} | – | skipped: its Services start with addresses in their status, which this runner does not write |`);
      continue;
    }
    if (expected.errors !== undefined || expected.services === undefined) {
      rows.push(`| ${name} | – | skipped: refused configuration (MetalLB's webhook refuses it; no webhook here) |`);
      continue;
    }
    const docs = YAML.parseAllDocuments(readFileSync(join(fixtures, file), "utf8")).map((d) => d.toJS() as Doc | null).filter((d): d is Doc => d !== null);
    // A clean slate: the last fixture's Services and MetalLB objects go.
    // (Namespaces stay: without kube-controller-manager a deleted namespace is never finalized. Those a fixture
    // declares are applied over, with their labels.)
    kubectl(["delete", "services", "--all", "--all-namespaces", "--wait=true"]);
    for (const kind of ["ipaddresspools", "l2advertisements"]) kubectl(["delete", kind, "--all", "-n", "metallb-system"]);
    const namespaces = new Set(docs.flatMap((d) => (d.kind === "Namespace" ? [] : d.metadata.namespace === undefined ? [] : [d.metadata.namespace])));
    for (const d of docs.filter((d) => d.kind === "Namespace")) kubectl(["apply", "-f", "-"], JSON.stringify(d));
    const declared = new Set(docs.filter((d) => d.kind === "Namespace").map((d) => d.metadata.name));
    const existing = new Set(JSON.parse(kubectl(["get", "namespaces", "-o", "json"])).items.map((n: { metadata: { name: string } }) => n.metadata.name));
    for (const ns of namespaces) if (!existing.has(ns) && !declared.has(ns)) kubectl(["create", "namespace", ns]);
    for (const d of docs.filter((d) => d.apiVersion.startsWith("metallb.io/"))) kubectl(["apply", "-f", "-"], JSON.stringify(d));
    const port = await freePort();
    const controller = startProcess(scope, {
      name: `metallb-controller-${name}`,
      command: join(binDir, "controller"),
      args: [`--port=${port}`, "--log-level=info", "--tls-min-version=VersionTLS12", "--webhook-mode=disabled", "--disable-cert-rotation"],
      env: { KUBECONFIG: cp.kubeconfigPath, METALLB_NAMESPACE: "metallb-system", METALLB_ML_SECRET_NAME: "memberlist", METALLB_DEPLOYMENT: "controller" },
      logPath: join(dir, `controller-${name}.log`),
    });
    // Ready when its metrics answer and its caches have the pools: give it a moment after.
    for (let i = 0; i < 300; i++) {
      if (await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.ok, () => false)) break;
      await sleep(100);
    }
    await sleep(1000);
    if (controller.child.exitCode !== null) throw new Error(`MetalLB's controller exited; see ${controller.logPath}`);
    const got = new Map<string, string[]>();
    const refused: string[] = [];
    for (const d of docs.filter((d) => d.kind === "Service")) {
      const key = `${d.metadata.namespace ?? "default"}/${d.metadata.name}`;
      // The fixtures leave out what the allocation does not read; the API server wants ports.
      const spec = { ports: [{ port: 80 }], ...d.spec };
      try {
        kubectl(["apply", "-f", "-"], JSON.stringify({ ...d, spec }));
      } catch (err) {
        refused.push(`${key}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
        continue;
      }
      if (d.spec?.type !== "LoadBalancer") continue;
      let ips: string[] = [];
      const deadline = Date.now() + WAIT_MS;
      while (Date.now() < deadline) {
        const svc = JSON.parse(kubectl(["get", "service", "-n", d.metadata.namespace ?? "default", d.metadata.name, "-o", "json"]));
        ips = (svc.status?.loadBalancer?.ingress ?? []).map((i: { ip: string }) => i.ip);
        if (ips.length > 0) break;
        await sleep(100);
      }
      got.set(key, ips);
    }
    await controller.stop();
    const disagreements: string[] = [];
    for (const s of expected.services) {
      const key = `${s.namespace}/${s.name}`;
      const theirs = got.get(key) ?? [];
      if (JSON.stringify(theirs) !== JSON.stringify(s.ips)) disagreements.push(`${key}: Bollard ${s.ips.join(", ") || `none (${s.error ?? ""})`}, MetalLB ${theirs.join(", ") || "none"}`);
    }
    compared += expected.services.length;
    agreed += expected.services.length - disagreements.length;
    rows.push(`| ${name} | ${expected.services.length} | ${disagreements.length === 0 ? "same" : disagreements.join("; ")}${refused.length === 0 ? "" : ` (the API server refused ${refused.join("; ")})`} |`);
    process.stderr.write(`${name}: ${disagreements.length} disagreements\n`);
  }
  process.stdout.write(`MetalLB ${version}: ${agreed} of ${compared} Services allocated as Bollard's fixtures expect\n\n| fixture | Services | MetalLB ${version} vs Bollard |\n|---|---|---|\n${rows.join("\n")}\n`);
} finally {
  await scope.close();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
