// `bollard lab down`: undo a lab from what it wrote down, also when the process that made it crashed.
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ip, run } from "../network/exec.ts";
import { destroyLabNetwork, listLabNamespaces } from "../network/topology.ts";
import { LAB_ROOT, type LabState } from "./lab.ts";
import { labContainers, removeContainers } from "./containers.ts";
import { isProcessAlive } from "./processes.ts";

export async function readLabStates(root = LAB_ROOT): Promise<LabState[]> {
  let ids: string[];
  try {
    // In id order, so that `bollard lab status` lists them the same way each time.
    ids = (await readdir(root)).sort();
  } catch {
    return [];
  }
  const states: LabState[] = [];
  for (const id of ids) {
    try {
      states.push(JSON.parse(await readFile(join(root, id, "state.json"), "utf8")) as LabState);
    } catch {
      // A lab whose start crashed before it wrote its state: teardownStrays() removes what it left.
    }
  }
  return states;
}

async function isLabProcess(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return /bollard|kube-apiserver|etcd/.test(cmdline);
  } catch {
    return false;
  }
}

async function killPids(pids: number[]): Promise<void> {
  const mine = [];
  for (const pid of pids) if (pid !== process.pid && (await isLabProcess(pid))) mine.push(pid);
  for (const pid of mine) process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && mine.some(isProcessAlive); i++) await sleep(100);
  for (const pid of mine) if (isProcessAlive(pid)) process.kill(pid, "SIGKILL");
}

/** Stops the lab's supervisor (which cleans up after itself), then removes whatever is left. */
export async function teardownLab(state: LabState): Promise<void> {
  const [supervisor, ...rest] = state.pids;
  if (supervisor !== undefined && isProcessAlive(supervisor) && (await isLabProcess(supervisor))) {
    process.kill(supervisor, "SIGTERM");
    for (let i = 0; i < 150 && isProcessAlive(supervisor); i++) await sleep(100);
  }
  await killPids(rest);
  // podman's containers are not the lab's children (conmon holds them): removed by name, before their namespaces.
  if (state.runtime === "podman") await removeContainers([...new Set([...(state.containers ?? []), ...(await labContainers(state.id))])]);
  await destroyLabNetwork(state.id, state.nodes);
  await rm(state.dir, { recursive: true, force: true });
}

/**
 * Lab namespaces (all of them, or one lab's) whose lab has no state file — a crash during start-up: stop the
 * processes inside them and delete them.
 */
export async function teardownStrays(root = LAB_ROOT, onlyId?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await listLabNamespaces()) {
    if (onlyId !== undefined && !ns.startsWith(`bollard-${onlyId}-`)) continue;
    const pids = (await ip(["netns", "pids", ns], { allowFailure: true })).stdout
      .split("\n")
      .map((l) => Number.parseInt(l, 10))
      .filter((n) => n > 0);
    await killPids(pids);
    const id = ns.split("-")[1] as string;
    if (await hasPodman()) await removeContainers(await labContainers(id));
    await ip(["link", "del", `bl${id}`], { allowFailure: true });
    await ip(["netns", "del", ns], { allowFailure: true });
    await rm(join(root, id), { recursive: true, force: true });
    removed.push(ns);
  }
  return removed;
}

/** Labs of the process runtime leave no containers; a machine without podman has none to look for. */
async function hasPodman(): Promise<boolean> {
  return run("podman", ["--version"], { allowFailure: true }).then(
    (r) => r.code === 0,
    () => false,
  );
}
