import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, onShutdown } from "@bollard/core";
import {
  LAB_IP_FAMILIES,
  LAB_ROOT,
  type LabIPFamily,
  LAB_IMPLEMENTATIONS,
  LAB_RUNTIMES,
  type LabImplementation,
  type LabRuntime,
  type LabState,
  newLabId,
  ROUTER_DAEMONS,
  type RouterDaemon,
  readLabStates,
  runKubeProxy,
  startBackend,
  startControlPlane,
  startLab,
  teardownLab,
  teardownStrays,
} from "@bollard/lab";
import { type Command, CliUsageError, parseFlags } from "../command.ts";

const usage = `usage: bollard lab <command>

  up [--nodes N] [--ip-family F] [--runtime R] [--bgp D] [--implementation I]
                                       build the lab in the background: control plane, node1..N and client
                                       network namespaces, controller, speakers, ingresses, sample backends;
                                       F: ipv4 (default), ipv6 or dual — the ingress Service's families
                                       (dual: RequireDualStack) and the pods' endpoints;
                                       R = process (the sources, default) or podman (the images of
                                       'npm run image', with the chart's security context);
                                       --bgp adds a router namespace running D — frr, bird or gobgp —
                                       (AS 64501) peered with every node, and puts the client behind it;
                                       I = bollard (default) or metallb: MetalLB's controller and L2
                                       speakers (test/harness/build-metallb.sh) instead of Bollard's, for
                                       comparing the two (process runtime, layer 2)
  down [--id ID] [--all]               remove every namespace, process and file a lab made: the labs 'up'
                                       started (or only ID); --all also labs of tests and stray namespaces
  exec [--id ID] client|nodeN|router -- CMD
                                       run CMD inside the client (outside the cluster), a node or the router
                                       (vtysh and birdc are pointed at the lab's daemons; gobgp finds
                                       gobgpd on its own)
  status                               list running labs
  control-plane --kubeconfig FILE      start only etcd + kube-apiserver in the foreground; write an admin
                [--crds DIR]           kubeconfig to FILE once /readyz answers; stop on SIGINT/SIGTERM

internal (started by the lab itself):
  run [--nodes N] [--id ID] [--ip-family F] [--runtime R] [--bgp D] [--implementation I]  the lab in the foreground (what 'up' starts)
  kube-proxy --kubeconfig F --node-name N --uplink IF
  backend --name NAME --listen HOST:PORT`;

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "up":
      return up(rest);
    case "down":
      return down(rest);
    case "exec":
      return exec(rest);
    case "status":
      return status();
    case "run":
      return runForeground(rest);
    case "control-plane":
      return controlPlane(rest);
    case "kube-proxy":
      return kubeProxy(rest);
    case "backend":
      return backend(rest);
    case undefined:
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new CliUsageError(`unknown lab command "${sub}"\n${usage}`);
  }
};

const say = (line: string) => process.stderr.write(`bollard lab: ${line}\n`);
const UP = "bollard lab up";

function labRuntime(value: string | undefined): LabRuntime | undefined {
  if (value === undefined) return undefined;
  if (!(LAB_RUNTIMES as readonly string[]).includes(value)) throw new CliUsageError(`--runtime must be one of ${LAB_RUNTIMES.join(", ")}, got ${value}`);
  return value as LabRuntime;
}

function bgpDaemon(value: string | undefined): RouterDaemon | undefined {
  if (value === undefined) return undefined;
  if (!(ROUTER_DAEMONS as readonly string[]).includes(value)) throw new CliUsageError(`--bgp must be one of ${ROUTER_DAEMONS.join(", ")}, got ${value}`);
  return value as RouterDaemon;
}

function implementation(value: string | undefined): LabImplementation | undefined {
  if (value === undefined) return undefined;
  if (!(LAB_IMPLEMENTATIONS as readonly string[]).includes(value)) {
    throw new CliUsageError(`--implementation must be one of ${LAB_IMPLEMENTATIONS.join(", ")}, got ${value}`);
  }
  return value as LabImplementation;
}

function nodeCount(value: string | undefined): number {
  const n = Number(value ?? "2");
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new CliUsageError(`--nodes must be a whole number from 1 to 50, got ${value}`);
  return n;
}

function ipFamily(value: string | undefined): LabIPFamily {
  const family = value ?? "ipv4";
  if (!(LAB_IP_FAMILIES as readonly string[]).includes(family)) {
    throw new CliUsageError(`--ip-family must be one of ${LAB_IP_FAMILIES.join(", ")}, got ${value}`);
  }
  return family as LabIPFamily;
}

async function runForeground(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    nodes: { type: "string" },
    id: { type: "string" },
    "ready-file": { type: "string" },
    "ip-family": { type: "string" },
    runtime: { type: "string" },
    bgp: { type: "string" },
    implementation: { type: "string" },
  });
  const runtime = labRuntime(values.runtime);
  const shutdown = onShutdown();
  const bgp = bgpDaemon(values.bgp);
  const impl = implementation(values.implementation);
  const lab = await startLab({
    nodes: nodeCount(values.nodes),
    ipFamily: ipFamily(values["ip-family"]),
    ...(runtime ? { runtime } : {}),
    ...(bgp ? { bgp } : {}),
    ...(impl ? { implementation: impl } : {}),
    log: say,
    startedBy: UP,
    ...(values.id ? { id: values.id } : {}),
  });
  say(`ready: lab ${lab.id}, kubeconfig ${lab.kubeconfigPath}`);
  if (values["ready-file"]) {
    // Written whole and renamed, so the waiting `lab up` never reads half of it.
    await writeFile(`${values["ready-file"]}.tmp`, lab.id);
    await rename(`${values["ready-file"]}.tmp`, values["ready-file"]);
  }
  await new Promise<void>((resolve) => shutdown.signal.addEventListener("abort", () => resolve(), { once: true }));
  say(`stopping lab ${lab.id}`);
  await lab.down();
  return 0;
}

async function up(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { nodes: { type: "string" }, "ip-family": { type: "string" }, runtime: { type: "string" }, bgp: { type: "string" }, implementation: { type: "string" } });
  const nodes = nodeCount(values.nodes);
  const impl = implementation(values.implementation);
  const family = ipFamily(values["ip-family"]);
  const runtime = labRuntime(values.runtime);
  const bgp = bgpDaemon(values.bgp);
  if (process.getuid?.() !== 0) {
    say("the lab needs root (it creates network namespaces)");
    return 1;
  }
  const tools: [string, string][] = [["ip", "iproute2"], ["nft", "nftables"], ["setpriv", "util-linux"]];
  if (runtime === "podman") tools.push(["podman", "podman"], ["runc", "runc"]);
  for (const [tool] of tools) {
    const found = await new Promise<boolean>((resolve) => spawn("sh", ["-c", `command -v ${tool}`]).once("exit", (c) => resolve(c === 0)));
    if (!found) {
      say(`missing tool: ${tool} (install ${tools.map(([, p]) => p).join(", ")})`);
      return 1;
    }
  }
  await mkdir(LAB_ROOT, { recursive: true });
  const token = `${process.pid}-${Date.now()}`;
  const readyFile = join(LAB_ROOT, `.ready-${token}`);
  const logPath = join(LAB_ROOT, `up-${token}.log`);
  const out = openSync(logPath, "a");
  // The id is chosen here so that a failed start can be cleaned up without touching any other lab.
  const id = newLabId();
  const child = spawn(
    process.execPath,
    [process.argv[1] as string, "lab", "run", "--nodes", String(nodes), "--ip-family", family, "--id", id, "--ready-file", readyFile, ...(runtime ? ["--runtime", runtime] : []), ...(bgp ? ["--bgp", bgp] : []), ...(impl ? ["--implementation", impl] : [])],
    { detached: true, stdio: ["ignore", out, out] },
  );
  closeSync(out);
  child.unref();
  let exited: number | null = null;
  child.once("exit", (code) => {
    exited = code ?? 1;
  });
  let printed = 0;
  for (;;) {
    const log = await readFile(logPath, "utf8").catch(() => "");
    const lines = log.split("\n").filter(Boolean);
    for (const line of lines.slice(printed)) process.stderr.write(`${line}\n`);
    printed = lines.length;
    const ready = await readFile(readyFile, "utf8").catch(() => "");
    if (ready !== "") {
      const state = JSON.parse(await readFile(join(LAB_ROOT, ready, "state.json"), "utf8")) as LabState;
      // The supervisor keeps logging to the same file; inside the lab's directory, `lab down` removes it.
      await rename(logPath, join(state.dir, "supervisor.log"));
      await rm(readyFile, { force: true });
      process.stdout.write(
        [
          `lab ${state.id} is up (${state.nodes} nodes + client, ${state.ipFamily ?? "ipv4"}; components: ${state.runtime === "podman" ? "podman containers" : "processes"}). Try:`,
          `  export KUBECONFIG=${state.kubeconfig}`,
          `  ${state.kubectl} get nodes`,
          ...(state.router
            ? [
                `  bollard lab exec router -- ${{ frr: "vtysh -c 'show bgp summary'", bird: "birdc show protocols    ", gobgp: "gobgp neighbor          " }[state.router.daemon]}     # BGP mode: apply the pool, BGPPeer and`,
                "                                                             # BGPAdvertisement first (labBgpManifest)",
              ]
            : []),
          ...(state.ipFamily !== "ipv6" ? ["  bollard lab exec client -- curl -4 -s --resolve demo.local:80:<EXTERNAL-IP> http://demo.local/"] : []),
          ...(state.ipFamily === "ipv6" || state.ipFamily === "dual"
            ? ["  bollard lab exec client -- curl -6 -s --resolve 'demo.local:80:[<EXTERNAL-IPv6>]' http://demo.local/"]
            : []),
          "  bollard lab down",
          "",
        ].join("\n"),
      );
      return 0;
    }
    if (exited !== null) {
      say(`the lab failed to start (exit ${exited}); its log is ${logPath}`);
      await rm(readyFile, { force: true });
      await teardownStrays(LAB_ROOT, id);
      return 1;
    }
    await sleep(200);
  }
}

async function pickLab(id: string | undefined): Promise<LabState> {
  const states = await readLabStates();
  const chosen = id === undefined ? states.filter((s) => s.startedBy === UP) : states.filter((s) => s.id === id);
  if (chosen.length === 1) return chosen[0] as LabState;
  throw new CliUsageError(
    chosen.length === 0 ? `no running lab${id ? ` with id ${id}` : ""}` : `several labs run (${states.map((s) => s.id).join(", ")}): pass --id`,
  );
}

async function down(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { id: { type: "string" }, all: { type: "boolean" } });
  const states = (await readLabStates()).filter((s) =>
    values.id !== undefined ? s.id === values.id : values.all || s.startedBy === UP,
  );
  for (const state of states) {
    say(`removing lab ${state.id}`);
    await teardownLab(state);
  }
  if (values.all) {
    for (const ns of await teardownStrays()) say(`removed stray namespace ${ns}`);
  }
  return 0;
}

async function status(): Promise<number> {
  for (const s of await readLabStates()) process.stdout.write(`${s.id}\t${s.nodes} nodes\t${s.ipFamily ?? "ipv4"}\t${s.runtime ?? "process"}\tkubeconfig ${s.kubeconfig}\tsince ${s.startedAt}\n`);
  return 0;
}

async function exec(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const usageLine = "usage: bollard lab exec [--id ID] client|nodeN|router -- CMD [ARGS…]";
  if (dash < 0) throw new CliUsageError(usageLine);
  const { values, positionals } = parseFlags(argv.slice(0, dash), { id: { type: "string" } }, true);
  const cmd = argv.slice(dash + 1);
  const host = positionals[0] ?? "client";
  if (!/^(client|node\d+|router)$/.test(host) || cmd.length === 0) throw new CliUsageError(usageLine);
  const state = await pickLab(values.id);
  if (host === "router" && state.router === undefined) throw new CliUsageError(`lab ${state.id} has no router: start one with bollard lab up --bgp frr|bird|gobgp`);
  const argvIn = host === "router" && state.router ? routerCli(state.router, cmd) : cmd;
  const child = spawn("ip", ["netns", "exec", `bollard-${state.id}-${host}`, ...argvIn], { stdio: "inherit" });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

/**
 * The router's CLIs find the lab's daemons only through their sockets: vtysh (FRR; also GoBGP's zebra) by the socket
 * directory, birdc by BIRD's control socket; gobgp reaches gobgpd's API on the namespace's 127.0.0.1:50051, its default.
 */
function routerCli(router: NonNullable<LabState["router"]>, cmd: string[]): string[] {
  const [program, ...rest] = cmd as [string, ...string[]];
  if (program === "vtysh") return ["vtysh", "--vty_socket", router.dir, ...rest];
  if (program === "birdc" && router.daemon === "bird") return ["birdc", "-s", join(router.dir, "bird.ctl"), ...rest];
  return cmd;
}

async function controlPlane(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { kubeconfig: { type: "string" }, crds: { type: "string" } });
  if (values.kubeconfig === undefined) throw new CliUsageError("--kubeconfig FILE is required");
  const cp = await startControlPlane({ kubeconfigPath: values.kubeconfig, log: say });
  if (values.crds !== undefined) {
    const { execFileSync } = await import("node:child_process");
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "--server-side", "-f", values.crds], {
      stdio: ["ignore", "inherit", "inherit"],
    });
  }
  say(`ready: kubectl --kubeconfig ${values.kubeconfig} (${cp.binaries.kubectl}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  say("stopping");
  await cp.stop();
  return 0;
}

async function kubeProxy(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    kubeconfig: { type: "string" },
    "node-name": { type: "string" },
    uplink: { type: "string", default: "eth0" },
  });
  if (!values.kubeconfig || !values["node-name"]) throw new CliUsageError("--kubeconfig and --node-name are required");
  const shutdown = onShutdown();
  await runKubeProxy({
    kubeconfig: values.kubeconfig,
    nodeName: values["node-name"],
    uplink: values.uplink,
    logger: createLogger({ name: "lab-kube-proxy" }),
    signal: shutdown.signal,
  });
  return 0;
}

async function backend(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { name: { type: "string" }, listen: { type: "string" } });
  const match = /^(.*):(\d+)$/.exec(values.listen ?? "");
  if (!values.name || !match) throw new CliUsageError("--name NAME and --listen HOST:PORT are required");
  const server = await startBackend(values.name, match[1] as string, Number(match[2]));
  const shutdown = onShutdown();
  await new Promise<void>((resolve) => shutdown.signal.addEventListener("abort", () => resolve(), { once: true }));
  server.close();
  return 0;
}
