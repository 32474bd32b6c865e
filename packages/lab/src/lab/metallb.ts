// MetalLB instead of Bollard's controller and speakers, for benchmarks side by side: MetalLB's own manifest
// (config/manifests/metallb-native.yaml of the built version: its CRDs, RBAC, ServiceAccounts) applied to the
// lab's API server, and its controller and speaker binaries (test/harness/build-metallb.sh, built from the Go
// module proxy and cached) run with the args and environment their Deployment and DaemonSet give them, each with
// a token of its own ServiceAccount. What no kubelet does here the lab does: the speaker pods' objects (memberlist
// finds its peers by listing them) with the node's address as pod IP, and the memberlist key file.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { kubeRequest } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import YAML from "yaml";
import type { ControlPlane } from "../control-plane/control-plane.ts";
import type { RunResult } from "../network/exec.ts";
import type { LabHost } from "../network/topology.ts";
import { INSTALL_NAMESPACE } from "./install.ts";

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const BUILD_SCRIPT = join(repoRoot, "test/harness/build-metallb.sh");
/** What metallb-native.yaml's speaker pods are labelled, and its memberlist finds them by. */
const SPEAKER_LABELS = { app: "metallb", component: "speaker" };

export interface MetalLBComponent {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Its /metrics port (the manifest's `--port`), probed for readiness as MetalLB's own probes do. */
  port: number;
}

export interface MetalLBInstallation {
  version: string;
  controller: (port: number) => MetalLBComponent;
  speaker: (node: LabHost) => MetalLBComponent;
}

type Doc = {
  kind: string;
  metadata: { name: string };
  spec?: { template?: { spec?: { serviceAccountName?: string; containers?: Array<{ args?: string[]; env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }> } } };
};

/** Builds (or finds cached) MetalLB and installs its manifest, less what needs a kubelet or a webhook server. */
export async function installMetalLB(opts: {
  controlPlane: ControlPlane;
  kubeConfig: KubeConfig;
  kubectl: (args: string[], input?: string) => Promise<RunResult>;
  dir: string;
  nodes: LabHost[];
}): Promise<MetalLBInstallation> {
  await execFileAsync("bash", [BUILD_SCRIPT], { maxBuffer: 16 << 20 });
  const binDir = (await execFileAsync("bash", [BUILD_SCRIPT, "--print-dir"])).stdout.trim();
  const version = binDir.split("/").at(-1) as string;
  const moduleDir = (JSON.parse((await execFileAsync("go", ["mod", "download", "-json", `go.universe.tf/metallb@${version}`])).stdout) as { Dir: string }).Dir;
  const docs = YAML.parseAllDocuments(await readFile(join(moduleDir, "config/manifests/metallb-native.yaml"), "utf8"))
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
  // No webhook server runs (the controller gets --webhook-mode=disabled), so its configuration would refuse every
  // pool; the Deployment and DaemonSet are run by the lab itself.
  const applied = docs.filter((d) => !["ValidatingWebhookConfiguration", "Deployment", "DaemonSet"].includes(d.kind));
  const result = await opts.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], applied.map((d) => YAML.stringify(d)).join("---\n"));
  if (result.code !== 0) throw new Error(`applying MetalLB ${version}'s manifest: ${result.stderr}`);
  await opts.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);

  const workload = (kind: string, name: string) => {
    const spec = docs.find((d) => d.kind === kind && d.metadata.name === name)?.spec?.template?.spec;
    const container = spec?.containers?.[0];
    if (spec?.serviceAccountName === undefined || container === undefined) throw new Error(`MetalLB ${version}'s manifest has no ${kind} ${name}`);
    return { serviceAccount: spec.serviceAccountName, args: container.args ?? [], env: container.env ?? [] };
  };
  const controller = workload("Deployment", "controller");
  const speaker = workload("DaemonSet", "speaker");
  const kubeconfigs: Record<string, string> = {};
  for (const account of [controller.serviceAccount, speaker.serviceAccount]) {
    const token = (await opts.kubectl(["create", "token", account, "-n", INSTALL_NAMESPACE, "--duration=48h"])).stdout.trim();
    const path = join(opts.dir, `kubeconfig-metallb-${account}`);
    await opts.controlPlane.writeTokenKubeconfig(path, token);
    await chmod(path, 0o644);
    kubeconfigs[account] = path;
  }

  // The memberlist key, as the Secret the manifest mounts at METALLB_ML_SECRET_KEY_PATH.
  const key = randomBytes(128).toString("base64");
  const secretDir = join(opts.dir, "metallb-memberlist");
  await mkdir(secretDir, { recursive: true });
  await writeFile(join(secretDir, "secretkey"), key, { mode: 0o644 });
  await chmod(secretDir, 0o755);
  await opts.kubectl(["create", "secret", "generic", "memberlist", "-n", INSTALL_NAMESPACE, `--from-literal=secretkey=${key}`]);

  // The speaker pods as a DaemonSet's would be: memberlist joins the pod IPs it lists (host network: the node's).
  for (const node of opts.nodes) {
    const name = `speaker-${node.name}`;
    await kubeRequest(opts.kubeConfig, {
      method: "POST",
      path: `/api/v1/namespaces/${INSTALL_NAMESPACE}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: INSTALL_NAMESPACE, labels: SPEAKER_LABELS },
        spec: { nodeName: node.name, hostNetwork: true, serviceAccountName: speaker.serviceAccount, containers: [{ name: "speaker", image: `quay.io/metallb/speaker:${version}` }] },
      },
    });
    await kubeRequest(opts.kubeConfig, {
      method: "PATCH",
      path: `/api/v1/namespaces/${INSTALL_NAMESPACE}/pods/${name}/status`,
      contentType: "application/merge-patch+json",
      body: { status: { phase: "Running", hostIP: node.ipv4, podIP: node.ipv4, podIPs: [{ ip: node.ipv4 }], conditions: [{ type: "Ready", status: "True" }] } },
    });
  }

  /** The container's env with the downward API's fieldRefs filled in, and the mounted key's path. */
  const envOf = (w: typeof controller, fields: Record<string, string>) => {
    const env: Record<string, string> = { METALLB_NAMESPACE: INSTALL_NAMESPACE, KUBECONFIG: kubeconfigs[w.serviceAccount] as string };
    for (const e of w.env) {
      const value = e.valueFrom?.fieldRef ? fields[e.valueFrom.fieldRef.fieldPath] : e.value;
      if (value !== undefined) env[e.name] = value;
    }
    if (env.METALLB_ML_SECRET_KEY_PATH !== undefined) env.METALLB_ML_SECRET_KEY_PATH = secretDir;
    return env;
  };
  const withPort = (args: string[], port: number) => [...args.filter((a) => !a.startsWith("--port=")), `--port=${port}`];
  const portOf = (args: string[]) => Number(args.find((a) => a.startsWith("--port="))?.slice("--port=".length) ?? 7472);
  return {
    version,
    controller: (port) => ({
      command: join(binDir, "controller"),
      // The controller runs on the host's network here, where the manifest's port could collide: a free one.
      args: [...withPort(controller.args, port), "--webhook-mode=disabled", "--disable-cert-rotation"],
      env: envOf(controller, { "metadata.namespace": INSTALL_NAMESPACE }),
      port,
    }),
    speaker: (node) => ({
      command: join(binDir, "speaker"),
      args: speaker.args,
      env: envOf(speaker, { "spec.nodeName": node.name, "metadata.name": `speaker-${node.name}`, "status.hostIP": node.ipv4, "status.podIP": node.ipv4, "metadata.namespace": INSTALL_NAMESPACE }),
      port: portOf(speaker.args),
    }),
  };
}
