// Our BFD session against FRR 8.4's bfdd, single hop, in two network namespaces made for this test: the
// session comes Up, a second of our event loop blocked is not taken for FRR gone silent, FRR declares it down
// within its detection time when our side goes silent (kill), and an administrative stop is seen as AdminDown.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";

const id = randomBytes(3).toString("hex");
const ROUTER_NS = `bgpb-${id}-router`;
const NODE_NS = `bgpb-${id}-node`;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("BFD with FRR's bfdd (network namespaces)", () => {
  let dir: string;
  let bfdd: ChildProcess;
  let ours: ChildProcess | undefined;
  const ourStates: string[] = [];
  const peer = () => {
    const peers = JSON.parse(sh("ip", ["netns", "exec", ROUTER_NS, "vtysh", "--vty_socket", dir, "-d", "bfdd", "-c", "show bfd peers json"])) as { peer: string; status: string; diagnostic?: string; "remote-diagnostic"?: string }[];
    return peers.find((p) => p.peer === "10.78.0.2");
  };
  const until = async (what: string, check: () => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        if (check()) return;
      } catch {
        // bfdd still starting
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };

  before(async () => {
    // The routers come with the lab group of the shared system-packages step; say so if they are missing.
    sh("bash", [join(import.meta.dirname, "../../../scripts/system-packages.sh"), "--check", "lab"]);
    sh("ip", ["netns", "add", ROUTER_NS]);
    sh("ip", ["netns", "add", NODE_NS]);
    sh("ip", ["link", "add", `bgpb${id}r`, "netns", ROUTER_NS, "type", "veth", "peer", "name", `bgpb${id}n`, "netns", NODE_NS]);
    for (const [ns, address, link] of [[ROUTER_NS, "10.78.0.1/24", `bgpb${id}r`], [NODE_NS, "10.78.0.2/24", `bgpb${id}n`]] as const) {
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", ns, "addr", "add", address, "dev", link]);
      sh("ip", ["-n", ns, "link", "set", link, "up"]);
    }
    dir = await mkdtemp(join(tmpdir(), "bgpb-frr-"));
    // bfdd cannot skip dropping to its own user (bgpd can, -S): it runs as frr, in the frrvty group vtysh needs.
    sh("chown", ["frr:frr", dir]);
    sh("chmod", ["755", dir]);
    await writeFile(
      join(dir, "bfdd.conf"),
      "bfd\n peer 10.78.0.2 local-address 10.78.0.1\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !\n!\n",
    );
    const frr = sh("id", ["-u", "frr"]).trim();
    await chown(join(dir, "bfdd.conf"), Number(frr), Number(sh("id", ["-g", "frr"]).trim()));
    bfdd = spawn(
      "ip",
      ["netns", "exec", ROUTER_NS, "/usr/lib/frr/bfdd", "-u", "frr", "-g", "frr", "-P", "0", "-f", join(dir, "bfdd.conf"), "-i", join(dir, "bfdd.pid"), "--vty_socket", dir, "--bfdctl", join(dir, "bfdd.sock"), "-z", join(dir, "zserv.api"), "--log", `file:${join(dir, "bfdd.log")}`],
      { stdio: "ignore" },
    );
  });
  after(async () => {
    ours?.kill("SIGKILL");
    bfdd?.kill("SIGTERM");
    await sleep(300);
    if (bfdd && bfdd.exitCode === null && bfdd.signalCode === null) bfdd.kill("SIGKILL");
    for (const ns of [ROUTER_NS, NODE_NS]) execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Our session in its own process (on a worker thread with `thread`); SIGUSR2 blocks its event loop for `stallMs`. */
  function startOurs(detectMultiplier = 3, { thread = false, stallMs = 1000 } = {}) {
    const script = `import { BfdSession, BfdThreadSession } from "@bollard/bgp";
const s = new ${thread ? "BfdThreadSession" : "BfdSession"}({ peerAddress: "10.78.0.1", localAddress: "10.78.0.2", desiredMinTxMs: 100, requiredMinRxMs: 100, detectMultiplier: ${detectMultiplier}, passive: false });
s.on("state", (t) => console.log(JSON.stringify(t)));
await s.start();
process.on("SIGUSR2", () => { const until = Date.now() + ${stallMs}; while (Date.now() < until); console.log(JSON.stringify({ to: "stalled" })); });
process.once("SIGTERM", () => s.stop().then(() => process.exit(0)));`;
    ours = spawn("ip", ["netns", "exec", NODE_NS, process.execPath, "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"], cwd: join(import.meta.dirname, "..") });
    createInterface({ input: ours.stdout as NodeJS.ReadableStream }).on("line", (line) => ourStates.push((JSON.parse(line) as { to: string }).to));
  }

  it("comes Up with FRR", async () => {
    startOurs();
    await until("FRR to see the session up", () => peer()?.status === "up");
    await until("our side Up", () => ourStates.includes("Up"));
  });

  it("does not take its own blocked event loop for FRR gone silent", async () => {
    // FRR's packets keep arriving while our loop is blocked for 1 s, over 3 × our 300 ms detection time. Node runs
    // due timers before it reads sockets: the detection timer must not win over the packets waiting to be read.
    // (Our multiplier 50 gives FRR 5 s of patience with our silence meanwhile.)
    ours?.kill("SIGKILL");
    ourStates.length = 0;
    startOurs(50);
    await until("our side Up again", () => ourStates.includes("Up") && peer()?.status === "up");
    await sleep(500);
    ours?.kill("SIGUSR2");
    await until("the stall to end", () => ourStates.includes("stalled"), 10_000);
    await sleep(1000);
    assert.deepEqual(ourStates.slice(ourStates.indexOf("stalled")), ["stalled"], "no state change after the stall");
    assert.equal(peer()?.status, "up");
    ours?.kill("SIGKILL");
    await until("FRR to see the session down", () => peer()?.status === "down", 10_000);
    ourStates.length = 0;
    startOurs();
    await until("our side Up again", () => ourStates.includes("Up") && peer()?.status === "up");
  });

  it("on its own thread, stays Up with FRR while the process's event loop is blocked for 2 s", async () => {
    // 2 s is over 6 × FRR's 300 ms detection time: the session on the main loop would be declared down (see the
    // speaker's churn at 1,000 Services), the one on a worker thread keeps sending.
    ours?.kill("SIGKILL");
    await until("FRR to see the session down", () => peer()?.status === "down", 10_000);
    ourStates.length = 0;
    startOurs(3, { thread: true, stallMs: 2000 });
    await until("our side Up again", () => ourStates.includes("Up") && peer()?.status === "up");
    await sleep(500);
    ours?.kill("SIGUSR2");
    await until("the stall to end", () => ourStates.includes("stalled"), 10_000);
    await sleep(500);
    assert.deepEqual(ourStates.slice(ourStates.indexOf("Up") + 1), ["stalled"], "no state change during or after the stall");
    assert.equal(peer()?.status, "up");
  });

  it("is declared down by FRR's detection timer (3 × 100 ms) when our process dies", async (t) => {
    const killed = Date.now();
    ours?.kill("SIGKILL");
    await until("FRR to see the session down", () => peer()?.status === "down", 5_000);
    // How fast is for bench/ to measure; here, that it was BFD's own timer that noticed.
    t.diagnostic(`FRR saw it down ${Date.now() - killed} ms after the kill (vtysh polled every 50 ms)`);
    assert.match(peer()?.diagnostic ?? "", /control detection time expired/);
  });

  it("comes back Up, and an orderly stop is seen as AdminDown", async () => {
    ourStates.length = 0;
    startOurs();
    await until("FRR to see the session up again", () => peer()?.status === "up");
    ours?.kill("SIGTERM");
    await until("FRR to see the session down", () => peer()?.status === "down", 5_000);
    assert.match(peer()?.["remote-diagnostic"] ?? "", /administratively down/);
  });
});
