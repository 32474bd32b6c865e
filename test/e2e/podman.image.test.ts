// The lab with `--runtime podman`: the controller, the speakers and the ingresses run from the images `npm run image`
// built, each a podman container with its workload's security context from the installed manifest, in its lab
// node's network namespace, authenticated by its mounted ServiceAccount token. The speaker *image* answers ARP for
// the service address, and a request from outside the cluster reaches the app through the ingress *image*.
// In the image group (root, minutes): builds the images first if this machine has none.
//   npx node test/run.ts test/e2e/podman.image.test.ts
// The whole user story the same way: BOLLARD_LAB_RUNTIME=podman npx node test/run.ts test/e2e/user-story.lab.test.ts
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { type Lab, labPoolManifest, startLab } from "@bollard/lab";
import { arpingMAC, curl, electedNode, eventually, waitForServiceIP } from "./helpers.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

type Container = { spec: { image: string; securityContext: { runAsUser: number; capabilities: { add?: string[] } } } };

/** The images and security contexts the manifest the lab installs asks for, by workload name. */
function manifestContainers(): Record<string, Container["spec"]> {
  const docs = YAML.parseAllDocuments(readFileSync(join(root, "deploy/manifests/bollard.yaml"), "utf8")).map((d) => d.toJS());
  const out: Record<string, Container["spec"]> = {};
  for (const d of docs) {
    const container = d?.spec?.template?.spec?.containers?.[0];
    if (container) out[d.metadata.name] = container;
  }
  return out;
}

const podman = (args: string[]) => execFileSync("podman", args, { encoding: "utf8" }).trim();

/** The kernel's view of a container's main process: user, capabilities, no_new_privs, network namespace. */
function processOf(container: string) {
  const pid = podman(["inspect", "--format", "{{.State.Pid}}", container]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, "m").exec(status)?.[1]?.trim() ?? "";
  return {
    pid: Number(pid),
    uid: field("Uid").split(/\s+/)[1],
    capEff: BigInt(`0x${field("CapEff")}`),
    capBnd: BigInt(`0x${field("CapBnd")}`),
    noNewPrivs: field("NoNewPrivs"),
    netns: readlinkSync(`/proc/${pid}/ns/net`),
  };
}

const CAP_NET_RAW = 1n << 13n;

describe("the lab under podman", { timeout: 900_000 }, () => {
  let lab: Lab;
  const workloads = manifestContainers();

  before(async () => {
    const images = Object.values(workloads).map((c) => c.image);
    if (images.some((image) => spawnSync("podman", ["image", "exists", image]).status !== 0)) {
      execFileSync("bash", [join(root, "deploy/container/build.sh")], { stdio: ["ignore", "inherit", "inherit"] });
    }
    lab = await startLab({ nodes: 2, runtime: "podman", log: (l) => process.stdout.write(`# lab: ${l}\n`) });
  });
  after(async () => {
    if (!lab) return;
    const containers = lab.processes().flatMap((p) => (p.container ? [p.container] : []));
    await lab.down();
    const left = podman(["ps", "--all", "--filter", `name=^bollard-${lab.id}-`, "--format", "{{.Names}}"]);
    assert.equal(left, "", `lab down removes every container (had ${containers.join(", ")})`);
  });

  it("runs the controller, each speaker and each ingress as a container with its workload's security context", async () => {
    const byLabel = new Map(lab.processes().map((p) => [p.name, p]));
    const expected: [string, string, string | undefined][] = [["controller", "bollard-controller", undefined]];
    for (const node of lab.network.nodes) {
      expected.push([`${node.name}-speaker`, "bollard-speaker", node.netns], [`${node.name}-ingress`, "bollard-ingress", node.netns]);
    }
    for (const [label, workload, netns] of expected) {
      const container = byLabel.get(label)?.container;
      assert.ok(container, `${label} is a container`);
      await eventually(`${label} running`, async () => (podman(["inspect", "--format", "{{.State.Running}}", container]) === "true" ? true : undefined), 60_000);
      const spec = workloads[workload];
      assert.ok(spec, workload);
      assert.equal(podman(["inspect", "--format", "{{.ImageName}}", container]), spec.image, `${label} runs ${spec.image}`);
      assert.equal(podman(["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", container]), "true", `${label}: read-only root`);
      const proc = processOf(container);
      assert.equal(proc.uid, String(spec.securityContext.runAsUser), `${label}: effective user`);
      assert.equal(proc.noNewPrivs, "1", `${label}: allowPrivilegeEscalation false`);
      const netRaw = spec.securityContext.capabilities.add?.includes("NET_RAW") ? CAP_NET_RAW : 0n;
      assert.equal(proc.capEff, netRaw, `${label}: effective capabilities`);
      assert.equal(proc.capBnd, netRaw, `${label}: bounding set`);
      if (netns !== undefined) {
        const nsInode = statSync(`/run/netns/${netns}`).ino;
        assert.equal(proc.netns, `net:[${nsInode}]`, `${label} is in ${netns}`);
      }
    }
    assert.ok(
      lab.processes().every((p) => p.container !== undefined || /-(kube-proxy|demo)$/.test(p.name)),
      "only the stand-ins (kube-proxy, backends) run as processes",
    );
  });

  it("answers ARP for the address from the elected node's speaker image, and serves demo.local through the ingress image", async () => {
    const applied = await lab.kubectl(["apply", "-f", "-"], labPoolManifest(lab.network.prefixV4));
    assert.equal(applied.code, 0, applied.stderr);
    await lab.kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);
    const vip = await waitForServiceIP(lab, "metallb-system", "bollard-ingress");
    const bodies = new Set<string>();
    await eventually("demo.local answering through the address", async () => {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      return r.code === 0 && r.body.startsWith("demo-") ? true : undefined;
    }, 90_000);
    for (let i = 0; i < 12; i++) bodies.add((await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"])).body);
    assert.deepEqual([...bodies].sort(), ["demo-node1", "demo-node2"], "both backends answer");

    const elected = electedNode(lab.network.nodes.map((n) => n.name), vip) as string;
    const host = lab.network.nodes.find((n) => n.name === elected);
    assert.equal(await arpingMAC(lab, vip), host?.mac, `arping ${vip} sees ${elected}'s MAC`);
    // Nothing but the speaker container in that node can answer: the address is on no interface, and the
    // speaker's process in it is the container's.
    const addrs = execFileSync("ip", ["-n", host?.netns as string, "-j", "addr"], { encoding: "utf8" });
    assert.ok(!addrs.includes(`"${vip}"`), "the address is on no interface of the node");
    const packetSockets = execFileSync("ip", ["netns", "exec", host?.netns as string, "ss", "-0", "-p", "-a"], { encoding: "utf8" });
    const speaker = processOf(`bollard-${lab.id}-${elected}-speaker`);
    assert.match(packetSockets, new RegExp(`pid=${speaker.pid},`), "the speaker container holds the node's packet socket");
    // The ingress port on that node is the ingress container's process.
    const listeners = execFileSync("ip", ["netns", "exec", host?.netns as string, "ss", "-ltnp", "sport = :8080"], { encoding: "utf8" });
    const ingress = processOf(`bollard-${lab.id}-${elected}-ingress`);
    assert.match(listeners, new RegExp(`pid=${ingress.pid},`), `${elected}:8080 is the ingress container`);
  });
});
