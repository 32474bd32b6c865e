// The lab's components run from Bollard's images under podman (`--runtime podman`), as a kubelet would run their
// pods: the image, args and security context of the workload in the installed manifest, the downward-API
// environment, the ServiceAccount token mounted where client libraries look for it, and the network namespace of
// the lab node the pod is on (the speaker's DaemonSet uses hostNetwork; the lab runs the ingress there too).
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { run } from "../network/exec.ts";
import type { LabProcess } from "./processes.ts";

/** What the lab reads from a workload's container spec. */
export interface ContainerSecurity {
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

/** Where a pod's ServiceAccount token, CA and namespace are mounted (client libraries' in-cluster path). */
export const SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * runc, not crun: crun refuses hosts whose cgroups are in hybrid mode. Lowered limits: a runtime without
 * CAP_SYS_RESOURCE (some VMs) may not set the defaults podman asks for.
 */
const PODMAN = ["--runtime", "runc"];
const LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];

export class LabImageMissingError extends Error {
  override name = "LabImageMissingError";
  readonly image: string;
  constructor(image: string) {
    super(`image ${image} is not in this machine's container storage: build the images with \`sudo npm run image\``);
    this.image = image;
  }
}

export async function checkImages(images: string[]): Promise<void> {
  await run("podman", ["--version"]).catch(() => {
    throw new Error("podman is not installed (install podman and runc, or run `bash scripts/system-packages.sh image`)");
  });
  for (const image of new Set(images)) {
    const found = await run("podman", ["image", "exists", image], { allowFailure: true });
    if (found.code !== 0) throw new LabImageMissingError(image);
  }
}

/**
 * The podman flags for a container security context: `drop: [ALL]` + `add`, the user, a read-only root and
 * no_new_privs for allowPrivilegeEscalation false. Pure, so the mapping is tested on its own.
 */
export function securityFlags(sc: ContainerSecurity): string[] {
  const flags: string[] = [];
  if (sc.runAsUser !== undefined) flags.push("--user", `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}`);
  if (sc.readOnlyRootFilesystem) flags.push("--read-only");
  if (sc.allowPrivilegeEscalation === false) flags.push("--security-opt", "no-new-privileges");
  for (const cap of sc.capabilities?.drop ?? []) flags.push(`--cap-drop=${cap}`);
  for (const cap of sc.capabilities?.add ?? []) flags.push(`--cap-add=${cap}`);
  return flags;
}

/** A pod's ServiceAccount volume on disk: token, ca.crt and namespace, readable by the container's user. */
export async function writeServiceAccountDir(dir: string, token: string, caPem: string, namespace: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, "token"), token, { mode: 0o644 });
  await writeFile(join(dir, "ca.crt"), caPem, { mode: 0o644 });
  await writeFile(join(dir, "namespace"), namespace, { mode: 0o644 });
  return dir;
}

export interface SpawnLabContainerOptions {
  /** Container name, unique on the machine: `bollard-<lab id>-<component>`. */
  name: string;
  /** Lab name of the process (`node1-speaker`): its log file is `<logDir>/<label>.log`. */
  label: string;
  /** Network namespace (`ip netns` name) to join; the host's when undefined. */
  netns?: string;
  image: string;
  /** The container's command, replacing the image's entrypoint (podman --entrypoint, as JSON). */
  entrypoint?: string[];
  args: string[];
  env: Record<string, string>;
  security: ContainerSecurity;
  serviceAccountDir: string;
  logDir: string;
}

/** `podman run` in the foreground (its output to the log); stop() goes through podman, which owns the process. */
export function spawnLabContainer(opts: SpawnLabContainerOptions): LabProcess {
  const argv = [
    ...PODMAN, "run", "--rm", "--replace", "--name", opts.name, "--pull=never",
    "--network", opts.netns === undefined ? "host" : `ns:/run/netns/${opts.netns}`,
    ...securityFlags(opts.security), ...LIMITS,
    "-v", `${opts.serviceAccountDir}:${SERVICE_ACCOUNT_MOUNT}:ro`,
    ...Object.entries(opts.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    ...(opts.entrypoint === undefined ? [] : ["--entrypoint", JSON.stringify(opts.entrypoint)]),
    opts.image, ...opts.args,
  ];
  const logPath = join(opts.logDir, `${opts.label}.log`);
  const log = createWriteStream(logPath, { flags: "a" });
  // --pdeathsig: if the lab dies without cleaning up, podman run gets SIGTERM and passes it to the container.
  const child = spawn("setpriv", ["--pdeathsig", "TERM", "--", "podman", ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    name: opts.label,
    netns: opts.netns,
    child,
    logPath,
    container: opts.name,
    async stop(signal = "SIGTERM", graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const seconds = String(Math.max(1, Math.ceil(graceMs / 1000)));
      const args = signal === "SIGKILL" ? ["kill", "--signal", "KILL", opts.name] : ["stop", "--time", seconds, opts.name];
      await run("podman", [...PODMAN, ...args], { allowFailure: true, timeoutMs: graceMs + 30_000 });
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      await removeContainers([opts.name]);
    },
  };
}

/** Removes containers by name, whatever state they are in; never fails on one that is gone. */
export async function removeContainers(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await run("podman", [...PODMAN, "rm", "--force", "--ignore", "--time", "0", ...names], { allowFailure: true, timeoutMs: 60_000 });
}

/** The containers of one lab (by its name prefix), also after a crash that left no state file. */
export async function labContainers(id: string): Promise<string[]> {
  const res = await run("podman", ["ps", "--all", "--filter", `name=^bollard-${id}-`, "--format", "{{.Names}}"], { allowFailure: true });
  return res.code === 0 ? res.stdout.split("\n").filter((n) => n.startsWith(`bollard-${id}-`)) : [];
}

/**
 * Waits until every container runs: `podman run` returns long before its container does on a loaded machine (tens
 * of seconds here), and the lab is "up" only when its components are. A container whose `podman run` exited
 * fails the wait with the end of its log.
 */
export async function waitForContainers(procs: LabProcess[], timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(procs.filter((p) => p.container !== undefined));
  while (waiting.size > 0) {
    for (const p of [...waiting]) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) {
        const tail = (await readFile(p.logPath, "utf8").catch(() => "")).trim().split("\n").slice(-5).join("\n");
        throw new Error(`container ${p.container} exited (${p.child.exitCode ?? p.child.signalCode}): ${tail}`);
      }
      const state = await run("podman", ["inspect", "--format", "{{.State.Running}}", p.container as string], { allowFailure: true });
      if (state.stdout.trim() === "true") waiting.delete(p);
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) throw new Error(`containers not running after ${timeoutMs} ms: ${[...waiting].map((p) => p.container).join(", ")}`);
    await sleep(500);
  }
}

/** Waits until every URL answers 200 (a readiness probe); fails early if one of `procs` exits. */
export async function waitForReady(urls: string[], procs: LabProcess[], timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(urls);
  while (waiting.size > 0) {
    const exited = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (exited) throw new Error(`${exited.container ?? exited.name} exited; its log is ${exited.logPath}`);
    for (const url of [...waiting]) {
      const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
        (r) => {
          void r.body?.cancel();
          return r.status === 200;
        },
        () => false,
      );
      if (ok) waiting.delete(url);
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms: ${[...waiting].join(", ")}`);
    await sleep(500);
  }
}
