// Where kube-apiserver, etcd and kubectl come from: KUBEBUILDER_ASSETS (setup-envtest users have it), else the
// per-user cache filled by test/harness/build-control-plane.sh, which is run on demand.
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const buildScript = join(repoRoot, "test/harness/build-control-plane.sh");

export interface ControlPlaneBinaries {
  dir: string;
  kubeApiServer: string;
  etcd: string;
  kubectl: string;
}

export class ControlPlaneBuildError extends Error {
  override name = "ControlPlaneBuildError";
  readonly output: string;
  constructor(message: string, output: string) {
    super(message);
    this.output = output;
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function binariesIn(dir: string): ControlPlaneBinaries {
  return { dir, kubeApiServer: join(dir, "kube-apiserver"), etcd: join(dir, "etcd"), kubectl: join(dir, "kubectl") };
}

/** Finds the binaries, building them with Go when neither KUBEBUILDER_ASSETS nor the cache has them. */
export async function ensureControlPlaneBinaries(): Promise<ControlPlaneBinaries> {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets !== undefined && assets !== "") {
    const bins = binariesIn(assets);
    for (const path of [bins.kubeApiServer, bins.etcd]) {
      if (!(await isExecutable(path))) {
        throw new ControlPlaneBuildError(`KUBEBUILDER_ASSETS=${assets} has no executable ${path}`, "");
      }
    }
    // setup-envtest ships kubectl too; fall back to the cache's or PATH's.
    if (!(await isExecutable(bins.kubectl))) bins.kubectl = (await cachedBinaries()).kubectl;
    return bins;
  }
  return cachedBinaries();
}

async function cachedBinaries(): Promise<ControlPlaneBinaries> {
  try {
    const { stdout } = await run("bash", [buildScript, "--print-dir"]);
    const bins = binariesIn(stdout.trim());
    if ((await isExecutable(bins.kubeApiServer)) && (await isExecutable(bins.etcd)) && (await isExecutable(bins.kubectl))) {
      return bins;
    }
    await run("bash", [buildScript], { maxBuffer: 64 * 1024 * 1024 });
    return bins;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ControlPlaneBuildError(
      `building the test control plane failed (needs Go, or KUBEBUILDER_ASSETS with kube-apiserver and etcd): ${e.message}`,
      e.stderr ?? "",
    );
  }
}
