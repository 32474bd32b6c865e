// `npm run demo`: the user story end to end in the lab — a MetalLB-format pool, an app with an Ingress,
// addresses filled in, and curl from outside the cluster answered by both backends.
//   npm run demo            tear the lab down at the end
//   npm run demo -- --keep  leave it up and print how to use it
import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type LabState, labPoolManifest, readLabStates } from "@bollard/lab";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bollard = join(root, "packages/cli/bin/bollard.ts");
const keep = process.argv.includes("--keep");
const execFileAsync = promisify(execFile);

const banner = (text: string) => process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
const shown = (cmd: string[]) => process.stdout.write(`\x1b[36m$ ${cmd.join(" ")}\x1b[0m\n`);

function live(cmd: string, args: string[]): Promise<number> {
  return new Promise((res) => spawn(cmd, args, { stdio: "inherit" }).once("exit", (c) => res(c ?? 1)));
}

let state: LabState | undefined;
async function kubectl(args: string[], input?: string): Promise<string> {
  const s = state as LabState;
  shown(["kubectl", ...args]);
  const child = execFileAsync(s.kubectl, ["--kubeconfig", s.kubeconfig, ...args]);
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  process.stdout.write(stdout);
  return stdout;
}

async function main(): Promise<number> {
  banner("bollard lab up: control plane, node1 + node2 + client namespaces, controller, speakers, ingresses");
  shown(["bollard", "lab", "up"]);
  if ((await live(process.execPath, [bollard, "lab", "up"])) !== 0) return 1;
  const states = await readLabStates();
  state = states.sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
  if (state === undefined) throw new Error("lab up reported success but wrote no state");
  const prefix = JSON.parse(await readFile(join(state.dir, "state.json"), "utf8")) as LabState;
  const octets = await execFileAsync("ip", ["-j", "-n", prefix.client, "-4", "addr", "show", "eth0"]);
  const clientIP = (JSON.parse(octets.stdout) as { addr_info: { local: string }[] }[])[0]?.addr_info[0]?.local ?? "";
  const net = clientIP.split(".").slice(0, 3).join(".");

  try {
    banner("A MetalLB IPAddressPool + L2Advertisement, unchanged MetalLB format");
    const pool = labPoolManifest(net);
    process.stdout.write(pool);
    await kubectl(["apply", "-f", "-"], pool);

    banner("The app: a Service and an Ingress for demo.local");
    await kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);

    banner("The ingress Service gets an EXTERNAL-IP from the pool");
    let vip = "";
    for (let i = 0; i < 100 && vip === ""; i++) {
      vip = (
        await execFileAsync(state.kubectl, [
          "--kubeconfig", state.kubeconfig, "get", "svc", "-n", "metallb-system", "bollard-ingress",
          "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ])
      ).stdout.trim();
      if (vip === "") await sleep(200);
    }
    if (vip === "") throw new Error("the ingress Service got no address");
    await kubectl(["get", "svc", "-A"]);
    for (let i = 0; i < 50; i++) {
      const addr = (
        await execFileAsync(state.kubectl, ["--kubeconfig", state.kubeconfig, "get", "ingress", "demo", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"])
      ).stdout.trim();
      if (addr !== "") break;
      await sleep(200);
    }
    await kubectl(["get", "ingress", "-A"]);

    banner(`From outside the cluster: curl --resolve demo.local:80:${vip}`);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const args = ["lab", "exec", "--id", state.id, "client", "--", "curl", "-s", "--max-time", "5", "--resolve", `demo.local:80:${vip}`, "http://demo.local/"];
      shown(["bollard", ...args]);
      const { stdout } = await execFileAsync(process.execPath, [bollard, ...args]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
      process.stdout.write(stdout || "(no answer)\n");
      if (stdout.trim()) seen.add(stdout.trim());
    }
    banner(`answered by: ${[...seen].join(", ") || "nobody"}`);
    if (!keep) return seen.size >= 2 ? 0 : 1;
    process.stdout.write(
      `\nThe lab stays up (--keep):\n  export KUBECONFIG=${state.kubeconfig}\n  ${state.kubectl} get svc -A\n` +
        `  npx bollard lab exec client -- curl -s --resolve demo.local:80:${vip} http://demo.local/\n  npx bollard lab down\n`,
    );
    return seen.size >= 2 ? 0 : 1;
  } finally {
    if (!keep) {
      banner("bollard lab down");
      await live(process.execPath, [bollard, "lab", "down", "--id", state.id]);
    }
  }
}

process.exitCode = await main();
