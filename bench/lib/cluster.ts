// A private control plane per part (etcd + kube-apiserver from @bollard/lab), with Bollard's CRDs installed,
// and the `bollard` command as a real process against it.
import { execFile } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type ControlPlane, startControlPlane } from "@bollard/lab";
import { openKube, type Kube } from "./kube.ts";
import { type Started, startProcess } from "./proc.ts";
import type { Scope } from "./scope.ts";

const run = promisify(execFile);
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
// The installed entry point: the benchmarked processes start from Node's compile cache, as the images' do.
export const bollardBin = join(repoRoot, "packages/cli/bin/bollard.js");

export interface Cluster {
  cp: ControlPlane;
  kube: Kube;
  kubectl(args: string[]): Promise<string>;
}

export async function startCluster(scope: Scope, dir: string, withCrds = true): Promise<Cluster> {
  const cp = await startControlPlane({ dir: join(dir, "control-plane") });
  scope.defer(() => cp.stop());
  const kube = await openKube(cp.kubeconfigPath);
  scope.defer(() => kube.close());
  const kubectl = async (args: string[]) => (await run(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 })).stdout;
  if (withCrds) {
    await kubectl(["apply", "--server-side", "-f", join(repoRoot, "deploy/crds")]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  }
  return { cp, kube, kubectl };
}

export async function ensureNamespace(kube: Kube, name: string): Promise<void> {
  const res = await kube.call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`namespace ${name}: ${res.status}`);
}

/** `bollard <args>` as a real process (node from this repository), its output in `logPath`. */
export function startBollard(scope: Scope, name: string, args: string[], logPath: string, cpus?: string, nodeFlags: string[] = []): Started {
  return startProcess(scope, {
    name,
    command: process.execPath,
    args: [...nodeFlags, bollardBin, ...args],
    logPath,
    ...(cpus === undefined ? {} : { cpus }),
  });
}

export const bollardCommand = (args: string[], nodeFlags: string[] = []) => ["node", ...nodeFlags, "packages/cli/bin/bollard.js", ...args].join(" ");
