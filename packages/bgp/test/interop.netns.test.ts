// Our sessions against real routers nobody here wrote — FRR 8.4 (bgpd), BIRD 2.0 and GoBGP 3.10 from Debian —
// in two network namespaces made for this test: `router` runs the daemon (AS 64501, 10.77.0.1, fd77::1),
// `node` runs our speaker process with an eBGP session from 10.77.0.2 (AS 64500) and an iBGP session from
// 10.77.0.3 (AS 64501, sourceAddress), later a second eBGP session from 10.77.0.4 as a second node. Each router
// must show the IPv4 and IPv6 prefixes with the right next hops, communities, large communities and (iBGP)
// local-pref, two paths when two nodes announce (ECMP), and lose them when we withdraw or stop. Graceful
// restart: with the router as helper, a kill -9'd speaker's routes stay until the restarted speaker is back.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

const here = dirname(fileURLToPath(import.meta.url));
const id = randomBytes(3).toString("hex");
const ROUTER_NS = `bgpi-${id}-router`;
const NODE_NS = `bgpi-${id}-node`;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const inRouter = (cmd: string, args: string[]) => sh("ip", ["netns", "exec", ROUTER_NS, cmd, ...args]);

const until = async <T>(what: string, check: () => T | undefined | false, ms = 30_000): Promise<T> => {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

/** What each router's CLI reports for a prefix: next hop, communities, large communities, local-pref. */
type Seen = { nextHop: string; communities: string[]; largeCommunities: string[]; localPref?: number; asPath: string; stale?: boolean; multipath?: boolean };

type Router = {
  name: string;
  start(dir: string, options?: { gracefulRestart?: boolean }): ChildProcess;
  /** The route as the router holds it, learnt from `from` (our eBGP or iBGP address); undefined if absent. */
  route(dir: string, prefix: string, from: string): Seen | undefined;
  sessionsUp(dir: string): number;
};

const EBGP = "10.77.0.2";
const IBGP = "10.77.0.3";
/** A second node's address (same AS as EBGP): its announcements of the same prefix make an ECMP pair. */
const EBGP2 = "10.77.0.4";

const frr: Router = {
  name: "FRR",
  start(dir, options = {}) {
    const conf = join(dir, "bgpd.conf");
    execFileSync("sh", ["-c", `cat > ${conf}`], {
      input: `frr defaults traditional
hostname router
router bgp 64501
 bgp router-id 10.77.0.1
${options.gracefulRestart ? " bgp graceful-restart\n bgp graceful-restart stalepath-time 60\n" : " bgp graceful-restart-disable\n"} no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor ${EBGP} remote-as 64500
 neighbor ${IBGP} remote-as 64501
 neighbor ${EBGP2} remote-as 64500
 address-family ipv4 unicast
  maximum-paths 8
  neighbor ${EBGP} activate
  neighbor ${IBGP} activate
  neighbor ${EBGP2} activate
 exit-address-family
 address-family ipv6 unicast
  maximum-paths 8
  neighbor ${EBGP} activate
  neighbor ${IBGP} activate
  neighbor ${EBGP2} activate
 exit-address-family
`,
    });
    return spawn("ip", ["netns", "exec", ROUTER_NS, "/usr/lib/frr/bgpd", "-Z", "-S", "-n", "-P", "0", "-f", conf, "-i", join(dir, "bgpd.pid"), "--vty_socket", dir, "--log", `file:${join(dir, "bgpd.log")}`], { stdio: "ignore" });
  },
  route(dir, prefix, from) {
    const afi = prefix.includes(":") ? "ipv6" : "ipv4";
    const json = JSON.parse(inRouter("vtysh", ["--vty_socket", dir, "-d", "bgpd", "-c", `show bgp ${afi} unicast ${prefix} json`]));
    const path = (json.paths ?? []).find((p: { peer?: { peerId?: string } }) => p.peer?.peerId === from);
    if (!path) return undefined;
    return {
      nextHop: path.nexthops?.[0]?.ip,
      communities: path.community?.list ?? [],
      largeCommunities: path.largeCommunity?.list ?? [],
      localPref: path.locPrf,
      // FRR writes an empty AS path (iBGP) as "Local".
      asPath: path.aspath?.string === "Local" ? "" : (path.aspath?.string ?? ""),
      ...(path.stale ? { stale: true } : {}),
      ...(path.multipath ? { multipath: true } : {}),
    };
  },
  sessionsUp(dir) {
    const json = JSON.parse(inRouter("vtysh", ["--vty_socket", dir, "-d", "bgpd", "-c", "show bgp neighbors json"]));
    return Object.values(json).filter((n) => (n as { bgpState?: string }).bgpState === "Established").length;
  },
};

const bird: Router = {
  name: "BIRD",
  start(dir, options = {}) {
    const conf = join(dir, "bird.conf");
    execFileSync("sh", ["-c", `cat > ${conf}`], {
      input: `router id 10.77.0.1;
protocol device {}
protocol bgp speaker_ebgp {
  local 10.77.0.1 as 64501;
  neighbor ${EBGP} as 64500;
  graceful restart ${options.gracefulRestart ? "on" : "off"};
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
protocol bgp speaker_ibgp {
  local 10.77.0.1 as 64501;
  neighbor ${IBGP} as 64501;
  direct;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
protocol bgp speaker_ebgp2 {
  local 10.77.0.1 as 64501;
  neighbor ${EBGP2} as 64500;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`,
    });
    return spawn("ip", ["netns", "exec", ROUTER_NS, "bird", "-f", "-c", conf, "-s", join(dir, "bird.ctl"), "-P", join(dir, "bird.pid")], { stdio: "ignore" });
  },
  route(dir, prefix, from) {
    let out: string;
    try {
      out = inRouter("birdc", ["-s", join(dir, "bird.ctl"), "show", "route", "for", prefix, "protocol", { [EBGP]: "speaker_ebgp", [IBGP]: "speaker_ibgp", [EBGP2]: "speaker_ebgp2" }[from] as string, "all"]);
    } catch {
      // birdc exits non-zero for "Network not found"; it must still be BIRD answering (this throws if not).
      inRouter("birdc", ["-s", join(dir, "bird.ctl"), "show", "status"]);
      return undefined;
    }
    if (!out.includes(prefix.split("/")[0] as string)) return undefined;
    const field = (name: string) => new RegExp(`${name}: (.*)`).exec(out)?.[1]?.trim();
    const pairs = (text: string | undefined) => [...(text ?? "").matchAll(/\(([\d, ]+)\)/g)].map((m) => (m[1] as string).replace(/, ?/g, ":"));
    const localPref = field("BGP.local_pref");
    return {
      nextHop: (field("BGP.next_hop") ?? "").split(" ")[0] as string,
      communities: pairs(field("BGP.community")),
      largeCommunities: pairs(field("BGP.large_community")),
      ...(localPref ? { localPref: Number(localPref) } : {}),
      asPath: field("BGP.as_path") ?? "",
    };
  },
  sessionsUp(dir) {
    const out = inRouter("birdc", ["-s", join(dir, "bird.ctl"), "show", "protocols"]);
    return out.split("\n").filter((l) => /^speaker_\w+\s.*Established/.test(l)).length;
  },
};

const GOBGP_API = "127.0.0.1:50051";
const gobgp: Router = {
  name: "GoBGP",
  start(dir, options = {}) {
    const conf = join(dir, "gobgpd.toml");
    const gr = options.gracefulRestart;
    const family = (name: string) => `  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "${name}"
${gr ? "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n" : ""}`;
    const neighbor = (address: string, as: number) => `[[neighbors]]
  [neighbors.config]
    neighbor-address = "${address}"
    peer-as = ${as}
${gr ? "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n" : ""}${family("ipv4-unicast")}${family("ipv6-unicast")}`;
    execFileSync("sh", ["-c", `cat > ${conf}`], {
      input: `[global.config]
  as = 64501
  router-id = "10.77.0.1"
${neighbor(EBGP, 64500)}${neighbor(IBGP, 64501)}${neighbor(EBGP2, 64500)}`,
    });
    return spawn("ip", ["netns", "exec", ROUTER_NS, "gobgpd", "-f", conf, "--api-hosts", GOBGP_API, "-l", "warn"], { stdio: "ignore" });
  },
  route(_dir, prefix, from) {
    const afi = prefix.includes(":") ? "ipv6" : "ipv4";
    const json = JSON.parse(inRouter("gobgp", ["-u", "127.0.0.1", "-p", "50051", "global", "rib", "-a", afi, prefix, "-j"]));
    const paths = (json[prefix] ?? []) as { "source-id"?: string; "neighbor-ip"?: string; attrs: { type: number; nexthop?: string; communities?: number[]; value?: { asn?: number; global_admin?: number; local_data1?: number; local_data2?: number }[]; as_paths?: { asns: number[] }[] }[] }[];
    const path = paths.find((p) => p["neighbor-ip"] === from);
    if (!path) return undefined;
    const attr = (type: number) => path.attrs.find((a) => a.type === type);
    const mp = attr(14) as { nexthop?: string } | undefined;
    const lp = attr(5) as { value?: number } | undefined;
    const large = attr(32) as { value?: { ASN: number; LocalData1: number; LocalData2: number }[] } | undefined;
    return {
      nextHop: (attr(3)?.nexthop ?? mp?.nexthop) as string,
      communities: (attr(8)?.communities ?? []).map((c) => `${Math.floor(c / 65536)}:${c % 65536}`),
      largeCommunities: (large?.value ?? []).map((v) => `${v.ASN}:${v.LocalData1}:${v.LocalData2}`),
      ...(lp?.value !== undefined ? { localPref: lp.value } : {}),
      asPath: (attr(2)?.as_paths ?? []).flatMap((s) => s.asns).join(" "),
      ...((path as { stale?: boolean }).stale ? { stale: true } : {}),
    };
  },
  sessionsUp() {
    const json = JSON.parse(inRouter("gobgp", ["-u", "127.0.0.1", "-p", "50051", "neighbor", "-j"])) as { state?: { session_state?: number | string } }[];
    return json.filter((n) => n.state?.session_state === 6 || n.state?.session_state === "established" || n.state?.session_state === "ESTABLISHED").length;
  },
};

/** Our speaker process in the node namespace. */
class Speaker {
  readonly events: Record<string, unknown>[] = [];
  private child: ChildProcess;
  constructor() {
    this.child = spawn("ip", ["netns", "exec", NODE_NS, process.execPath, join(here, "helpers/speaker-process.ts")], { stdio: ["pipe", "pipe", "inherit"] });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) => this.events.push(JSON.parse(line)));
  }
  send(command: object) {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }
  /** kill -9: no NOTIFICATION, the kernel just closes the connection. */
  async crash() {
    this.child.kill("SIGKILL");
    await until("the speaker process to die", () => this.child.exitCode !== null || this.child.signalCode !== null, 10_000);
  }
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ stop: true });
    await until("the speaker process to stop", () => this.child.exitCode !== null, 10_000).catch(() => this.child.kill("SIGKILL"));
  }
}

const V4 = "192.168.77.10/32";
const V6 = "fd00:77::10/128";
const routes = (localPref?: number) => [
  { prefix: V4, communities: [64500 * 65536 + 100], largeCommunities: [[64500, 1, 2]], ...(localPref ? { localPref } : {}) },
  { prefix: V6, nextHop: "fd77::2", communities: [64500 * 65536 + 100], ...(localPref ? { localPref } : {}) },
];
const session = (sourceAddress: string, localAsn: number) => ({
  peerAddress: "10.77.0.1",
  localAsn,
  peerAsn: 64501,
  routerId: sourceAddress,
  sourceAddress,
  holdTime: 9,
  connectRetrySeconds: 1,
  maxBackoffSeconds: 2,
});

describe("interop with real routers (network namespaces)", () => {
  before(() => {
    // The routers come with the lab group of the shared system-packages step; say so if they are missing.
    sh("bash", [join(here, "../../../scripts/system-packages.sh"), "--check", "lab"]);
    sh("ip", ["netns", "add", ROUTER_NS]);
    sh("ip", ["netns", "add", NODE_NS]);
    sh("ip", ["link", "add", `bgpi${id}r`, "netns", ROUTER_NS, "type", "veth", "peer", "name", `bgpi${id}n`, "netns", NODE_NS]);
    const router = (args: string[]) => sh("ip", ["-n", ROUTER_NS, ...args]);
    const node = (args: string[]) => sh("ip", ["-n", NODE_NS, ...args]);
    router(["link", "set", "lo", "up"]);
    node(["link", "set", "lo", "up"]);
    router(["addr", "add", "10.77.0.1/24", "dev", `bgpi${id}r`]);
    router(["addr", "add", "fd77::1/64", "dev", `bgpi${id}r`, "nodad"]);
    node(["addr", "add", `${EBGP}/24`, "dev", `bgpi${id}n`]);
    node(["addr", "add", `${IBGP}/24`, "dev", `bgpi${id}n`]);
    node(["addr", "add", `${EBGP2}/24`, "dev", `bgpi${id}n`]);
    node(["addr", "add", "fd77::2/64", "dev", `bgpi${id}n`, "nodad"]);
    router(["link", "set", `bgpi${id}r`, "up"]);
    node(["link", "set", `bgpi${id}n`, "up"]);
  });
  after(() => {
    for (const ns of [ROUTER_NS, NODE_NS]) execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
  });

  for (const router of [frr, bird, gobgp]) {
    describe(router.name, () => {
      let dir: string;
      let daemon: ChildProcess;
      let speaker: Speaker;
      before(async () => {
        dir = await mkdtemp(join(tmpdir(), `bgpi-${router.name.toLowerCase()}-`));
        daemon = router.start(dir);
        speaker = new Speaker();
      });
      after(async () => {
        await speaker?.stop();
        daemon?.kill("SIGTERM");
        await until(`${router.name} to exit`, () => daemon.exitCode !== null || daemon.signalCode !== null, 10_000).catch(() => daemon.kill("SIGKILL"));
        await rm(dir, { recursive: true, force: true });
      });

      it("brings up an eBGP and an iBGP session (sourceAddress), IPv4 and IPv6 unicast over IPv4", async () => {
        speaker.send({ sessions: [{ ...session(EBGP, 64500), routes: routes() }, { ...session(IBGP, 64501), peerAsn: "internal", routes: routes(50) }] });
        await until("both sessions Established on our side", () => speaker.events.filter((e) => e.state === "Established").length === 2);
        await until(`${router.name} to see both sessions up`, () => router.sessionsUp(dir) === 2);
      });

      it("holds the IPv4 and IPv6 prefixes with next hop, communities and AS path from the eBGP session", async () => {
        const v4 = await until(`${V4} from ${EBGP}`, () => router.route(dir, V4, EBGP));
        assert.equal(v4.nextHop, EBGP);
        assert.deepEqual(v4.communities, ["64500:100"]);
        assert.deepEqual(v4.largeCommunities, ["64500:1:2"]);
        assert.equal(v4.asPath, "64500");
        const v6 = await until(`${V6} from ${EBGP}`, () => router.route(dir, V6, EBGP));
        assert.equal(v6.nextHop, "fd77::2");
        assert.deepEqual(v6.communities, ["64500:100"]);
      });

      it("holds the iBGP routes with our local-pref and an empty AS path", async () => {
        const v4 = await until(`${V4} from ${IBGP}`, () => router.route(dir, V4, IBGP));
        assert.equal(v4.localPref, 50);
        assert.equal(v4.nextHop, IBGP);
        assert.equal(v4.asPath, "");
        const v6 = await until(`${V6} from ${IBGP}`, () => router.route(dir, V6, IBGP));
        assert.equal(v6.localPref, 50);
      });

      it("holds two paths for a prefix two nodes announce (ECMP)", async () => {
        speaker.send({ sessions: [{ ...session(EBGP2, 64500), routes: routes() }] });
        await until(`${router.name} to see three sessions up`, () => router.sessionsUp(dir) === 3 || undefined);
        const second = await until(`${V4} from ${EBGP2}`, () => router.route(dir, V4, EBGP2));
        const first = router.route(dir, V4, EBGP);
        assert.deepEqual([first?.nextHop, second.nextHop], [EBGP, EBGP2]);
        if (router === frr) {
          // FRR (maximum-paths 8) uses both eBGP paths (the iBGP path has local-pref 50, below their default 100).
          assert.ok(first?.multipath || second.multipath, "FRR marks the second eBGP path multipath");
        }
        assert.ok(await until(`${V6} from ${EBGP2}`, () => router.route(dir, V6, EBGP2)));
      });

      it("loses a withdrawn prefix and keeps the other", async () => {
        speaker.send({ routes: [routes().slice(1), routes(50)] });
        await until(`${V4} withdrawn`, () => router.route(dir, V4, EBGP) === undefined || undefined);
        assert.ok(router.route(dir, V6, EBGP), "the IPv6 prefix stays");
      });

      it("loses everything from us when our speaker stops (Cease)", async () => {
        await speaker.stop();
        await until("sessions down", () => router.sessionsUp(dir) === 0 || undefined);
        assert.equal(router.route(dir, V6, EBGP), undefined);
        assert.equal(router.route(dir, V4, IBGP), undefined);
      });
    });
  }
  for (const router of [frr, bird, gobgp]) {
  describe(`graceful restart (RFC 4724) with ${router.name} as helper`, () => {
    let dir: string;
    let daemon: ChildProcess;
    const speakers: Speaker[] = [];
    const start = (restarting: boolean, gracefulRestart = true) => {
      const speaker = new Speaker();
      speakers.push(speaker);
      speaker.send({ sessions: [{ ...session(EBGP, 64500), ...(gracefulRestart ? { gracefulRestart: { restartTime: 120, restarting } } : {}), routes: routes() }] });
      return speaker;
    };
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `bgpi-${router.name.toLowerCase()}-gr-`));
      daemon = router.start(dir, { gracefulRestart: true });
    });
    after(async () => {
      for (const s of speakers) await s.stop();
      daemon?.kill("SIGTERM");
      await until(`${router.name} to exit`, () => daemon.exitCode !== null || daemon.signalCode !== null, 10_000).catch(() => daemon.kill("SIGKILL"));
      await rm(dir, { recursive: true, force: true });
    });

    it("without graceful restart, a killed speaker's routes go at once (the control)", async () => {
      const speaker = start(false, false);
      await until(`${V4} announced`, () => router.route(dir, V4, EBGP));
      await speaker.crash();
      await until(`${V4} gone`, () => router.route(dir, V4, EBGP) === undefined || undefined, 15_000);
    });

    it("keeps a killed speaker's routes (stale) until the restarted speaker is back, then refreshes them", async () => {
      const first = start(false);
      await until(`${V4} announced, not stale`, () => router.route(dir, V4, EBGP)?.stale === undefined && router.route(dir, V4, EBGP));
      await first.crash();
      await until(`${router.name} to see the session drop`, () => router.sessionsUp(dir) === 0 || undefined, 15_000);
      const kept = await until(`${V4} kept`, () => router.route(dir, V4, EBGP));
      assert.equal(kept.nextHop, EBGP);
      // FRR and GoBGP say the kept route is stale; BIRD's CLI does not show it.
      if (router !== bird) assert.equal(kept.stale, true);
      assert.ok(router.route(dir, V6, EBGP), "the IPv6 route is kept too");
      await new Promise((r) => setTimeout(r, 3000));
      assert.ok(router.route(dir, V4, EBGP), "still there 3 s later");
      start(true);
      await until("the restarted session up", () => router.sessionsUp(dir) === 1 || undefined);
      await until(`${V4} refreshed (no longer stale)`, () => router.route(dir, V4, EBGP) && router.route(dir, V4, EBGP)?.stale === undefined);
      assert.equal(router.route(dir, V6, EBGP)?.stale, undefined);
    });
  });
  }
});
