// TCP MD5 (RFC 2385) and TTL against FRR 8.4, BIRD 2.0 and GoBGP 3.10 (the lab's routers, `@bollard/lab`),
// through the speaker's addon (native/tcp_socket.c): the router in a `router` namespace requires a password from
// 10.77.0.2; our session in a `node` namespace gets up and its route across only with that password, and never
// with a wrong one or none.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { type LabBgpRouter, ROUTER_DAEMONS, type RouterOptions, startBirdRouter, startFrrRouter, startGobgpRouter } from "@bollard/lab";

const PASSWORD = "s3cret-Bollard";
const names = { frr: "FRR", bird: "BIRD", gobgp: "GoBGP" };
const starters: Record<(typeof ROUTER_DAEMONS)[number], (o: RouterOptions) => Promise<LabBgpRouter>> = { frr: startFrrRouter, bird: startBirdRouter, gobgp: startGobgpRouter };
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const daemon of ROUTER_DAEMONS) describe(`TCP MD5 with ${names[daemon]} (network namespaces)`, () => {
  const id = randomBytes(3).toString("hex");
  const ROUTER_NS = `bgpm-${id}-router`;
  const NODE_NS = `bgpm-${id}-node`;
  let dir: string;
  let router: LabBgpRouter | undefined;
  const established = async () => (await (router as LabBgpRouter).established()).includes("10.77.0.2");

  before(async () => {
    // The routers come with the lab group of the shared system-packages step; say so if they are missing.
    sh("bash", [join(import.meta.dirname, "../../../scripts/system-packages.sh"), "--check", "lab"]);
    sh("ip", ["netns", "add", ROUTER_NS]);
    sh("ip", ["netns", "add", NODE_NS]);
    sh("ip", ["link", "add", `bgpm${id}r`, "netns", ROUTER_NS, "type", "veth", "peer", "name", `bgpm${id}n`, "netns", NODE_NS]);
    for (const [ns, address, link] of [[ROUTER_NS, "10.77.0.1/24", `bgpm${id}r`], [NODE_NS, "10.77.0.2/24", `bgpm${id}n`]] as const) {
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", ns, "addr", "add", address, "dev", link]);
      sh("ip", ["-n", ns, "link", "set", link, "up"]);
    }
    dir = await mkdtemp(join(tmpdir(), `bgpm-${daemon}-`));
    router = await starters[daemon]({ netns: ROUTER_NS, dir, asn: 64501, routerId: "10.77.0.1", neighbors: [{ address: "10.77.0.2", asn: 64500, password: PASSWORD }] });
  });
  after(async () => {
    await router?.stop();
    for (const ns of [ROUTER_NS, NODE_NS]) execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs our session with this password for `ms`; returns the states it went through and whether FRR saw it up. */
  async function attempt(password: string | undefined, ms: number): Promise<{ states: string[]; routerSawIt: boolean; route: boolean }> {
    const config = {
      session: { peerAddress: "10.77.0.1", localAsn: 64500, peerAsn: 64501, routerId: "10.77.0.2", connectRetrySeconds: 1, maxBackoffSeconds: 1, families: [{ afi: 1, safi: 1 }] },
      ...(password ? { password } : {}),
      ttl: 1,
      routes: [{ prefix: "192.168.77.10/32" }],
    };
    const child = spawn("ip", ["netns", "exec", NODE_NS, process.execPath, join(import.meta.dirname, "helpers/bgp-session-process.ts"), JSON.stringify(config)], { stdio: ["ignore", "pipe", "inherit"] });
    const states: string[] = [];
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => states.push((JSON.parse(line) as { state: string }).state));
    let routerSawIt = false;
    let route = false;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !(routerSawIt && route)) {
      await sleep(250);
      try {
        routerSawIt ||= await established();
        route ||= (await (router as LabBgpRouter).paths("192.168.77.10/32")).length > 0;
      } catch {
        // the router still starting
      }
    }
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    return { states, routerSawIt, route };
  }

  it("gets no session without the password", async () => {
    const { states, routerSawIt } = await attempt(undefined, 6000);
    assert.equal(routerSawIt, false);
    assert.ok(!states.includes("OpenSent"), `the SYN is never answered: ${states.join(" → ")}`);
  });

  it("gets no session with a wrong password", async () => {
    const { states, routerSawIt } = await attempt("wrong", 6000);
    assert.equal(routerSawIt, false);
    assert.ok(!states.includes("OpenSent"), states.join(" → "));
  });

  it("reaches Established and announces with the right password", async () => {
    const { states, routerSawIt, route } = await attempt(PASSWORD, 30_000);
    assert.ok(routerSawIt, `${names[daemon]} saw the session up (our states: ${states.join(" → ")})`);
    assert.ok(states.includes("Established"));
    assert.ok(route, `${names[daemon]} holds the route`);
  });
});
