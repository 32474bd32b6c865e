// The test runner behind `npm test`: finds the test files, starts one real control plane (etcd +
// kube-apiserver) when a selected file needs it, installs the CRDs, runs `node --test`, and stops everything —
// also when the run fails or is interrupted.
//
//   node test/run.ts                 every test but the image builds (*.image.test.ts: name them)
//   node test/run.ts --unit          only tests that need neither the API server nor root networking
//   node test/run.ts FILE...         the given files
import { spawn, execFileSync } from "node:child_process";
import { glob } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ControlPlane, startControlPlane } from "@bollard/lab";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const explicit = args.filter((a) => !a.startsWith("--"));
const needsControlPlane = (f: string) => /\.(k8s|lab)\.test\.ts$/.test(f);
const needsRoot = (f: string) => /\.(netns|lab|image)\.test\.ts$/.test(f);
// Image builds take minutes: `*.image.test.ts` runs only when named (.ci/run runs it as a step of its own).
const onlyWhenNamed = (f: string) => /\.image\.test\.ts$/.test(f);

async function discover(): Promise<string[]> {
  const found: string[] = [];
  for await (const f of glob(["packages/*/test/**/*.test.ts", "test/**/*.test.ts"], { cwd: root })) {
    if (!f.includes("node_modules") && !onlyWhenNamed(f)) found.push(f);
  }
  return found.sort();
}

let files = explicit.length > 0 ? explicit.map((f) => relative(root, resolve(f))) : await discover();
if (unitOnly) files = files.filter((f) => !needsControlPlane(f) && !needsRoot(f));
if (files.length === 0) {
  console.error("test/run: no test files selected");
  process.exit(1);
}
if (files.some(needsRoot) && process.getuid?.() !== 0) {
  console.error("test/run: network-namespace and lab tests need root (ip netns); run as root or pass --unit");
  process.exit(1);
}

let controlPlane: ControlPlane | undefined;
let testProcess: ReturnType<typeof spawn> | undefined;
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    testProcess?.kill("SIGTERM");
    await controlPlane?.stop().catch((err: unknown) => console.error(`test/run: stopping the control plane: ${err}`));
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(130));
process.on("SIGTERM", () => void shutdown(143));

const env: NodeJS.ProcessEnv = { ...process.env };
if (files.some(needsControlPlane)) {
  const started = Date.now();
  try {
    controlPlane = await startControlPlane({ log: (line) => console.log(`test/run: ${line}`) });
  } catch (err) {
    console.error(`test/run: could not start the control plane: ${(err as Error).message}`);
    await shutdown(1);
  }
  const cp = controlPlane as ControlPlane;
  execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "--server-side", "-f", join(root, "deploy/crds")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  execFileSync(
    cp.binaries.kubectl,
    ["--kubeconfig", cp.kubeconfigPath, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  console.log(`test/run: control plane ready in ${Date.now() - started} ms; kubeconfig ${cp.kubeconfigPath}`);
  env.BOLLARD_KUBECONFIG = cp.kubeconfigPath;
  env.BOLLARD_KUBECTL = cp.binaries.kubectl;
  env.PATH = `${cp.binaries.dir}:${env.PATH ?? ""}`;
}

// The pinned Node runs the tests, whatever `node` is first on PATH.
env.PATH = `${join(root, "node_modules/.bin")}:${env.PATH ?? ""}`;
testProcess = spawn(
  process.execPath,
  ["--test", "--test-reporter=spec", "--test-timeout=600000", ...files],
  { cwd: root, env, stdio: "inherit" },
);
const code = await new Promise<number>((res) => testProcess?.once("exit", (c, s) => res(c ?? (s ? 1 : 0))));
await shutdown(code);
