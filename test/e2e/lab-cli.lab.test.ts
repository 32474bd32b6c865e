// `bollard lab` as a person uses it: up in the background, status, exec from the client, and down — also after
// the lab's supervisor crashed, leaving no namespace, process or file behind.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { isProcessAlive, readLabStates } from "@bollard/lab";
import { eventually } from "./helpers.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bollard = join(root, "packages/cli/bin/bollard.ts");
const run = promisify(execFile);
const labRoot = `/tmp/bollard-lab-cli-test-${process.pid}`;
const env = { ...process.env, BOLLARD_LAB_ROOT: labRoot };
const cli = (args: string[]) => run(process.execPath, [bollard, ...args], { env, timeout: 180_000 });

async function netnsOf(id: string): Promise<string[]> {
  return (await run("ip", ["netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(`bollard-${id}-`));
}

describe("bollard lab up / exec / down", { timeout: 300_000 }, () => {
  it("comes up in the background, runs commands in the client, and goes down after its supervisor crashed", async () => {
    // A lab this command did not start (a test's, a benchmark's): `lab down` must leave it alone.
    const foreign = join(labRoot, "f00f");
    await mkdir(foreign, { recursive: true });
    await writeFile(join(foreign, "state.json"), JSON.stringify({ id: "f00f", dir: foreign, nodes: 1, kubeconfig: "", kubectl: "", pids: [], client: "", startedAt: "" }));
    const up = await cli(["lab", "up", "--nodes", "1"]);
    assert.match(up.stdout, /lab [0-9a-f]{4} is up/);
    process.env.BOLLARD_LAB_ROOT = labRoot;
    const state = (await readLabStates(labRoot)).find((s) => s.id !== "f00f");
    assert.ok(state, "lab up wrote its state");
    try {
      assert.deepEqual((await netnsOf(state.id)).map((l) => l.split(" ")[0]).sort(), [
        `bollard-${state.id}-client`,
        `bollard-${state.id}-node1`,
        `bollard-${state.id}-sw`,
      ]);
      const status = await cli(["lab", "status"]);
      // One line per lab in id order, the foreign one included: ours is first only when its id sorts before f00f.
      assert.match(status.stdout, new RegExp(`^${state.id}\\t1 nodes\\tipv4\\tprocess\\tkubeconfig ${state.kubeconfig}\\t`, "m"));
      assert.match(status.stdout, /^f00f\t1 nodes/m, "the foreign lab is listed too");
      const exec = await cli(["lab", "exec", "client", "--", "ip", "-j", "-4", "addr", "show", "eth0"]);
      assert.match(exec.stdout, /"local":"10\.251\.\d+\.100"/, "exec runs inside the client namespace");

      // A crash of the supervisor: its children die with it (pdeathsig); the namespaces and files remain.
      const [supervisor, ...children] = state.pids;
      process.kill(supervisor as number, "SIGKILL");
      await eventually("the lab's processes to die with their supervisor", async () => (children.every((p) => !isProcessAlive(p)) ? true : undefined), 20_000);
      assert.ok((await netnsOf(state.id)).length > 0, "namespaces outlive the crash until lab down");
    } finally {
      await cli(["lab", "down"]);
    }
    assert.deepEqual(await netnsOf(state.id), []);
    assert.deepEqual(await readdir(labRoot), ["f00f"], "no file of the lab left behind, and the other lab untouched");
    await rm(labRoot, { recursive: true, force: true });
    const link = await run("ip", ["link", "show", `bl${state.id}`]).catch((e: { code: number }) => e);
    assert.ok("code" in link && link.code !== 0, "the host's lab interface is gone");
  });

  it("says which step failed and cleans up", async () => {
    const failed = await run(process.execPath, [bollard, "lab", "up", "--nodes", "0"], { env }).catch((e: { code: number; stderr: string }) => e);
    assert.ok("code" in failed && failed.code === 2);
    assert.match(failed.stderr, /--nodes must be a whole number from 1 to 50/);
    const runtime = await run(process.execPath, [bollard, "lab", "up", "--runtime", "docker"], { env }).catch((e: { code: number; stderr: string }) => e);
    assert.ok("code" in runtime && runtime.code === 2);
    assert.match(runtime.stderr, /--runtime must be one of process, podman, got docker/);
    const notRoot = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, bollard, "lab", "up"], { env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok("code" in notRoot && notRoot.code === 1);
    assert.match(notRoot.stderr, /needs root/);
  });
});
