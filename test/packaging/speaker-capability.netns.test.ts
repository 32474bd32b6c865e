// Why the speaker image and pod are built the way they are, checked against this kernel: the speaker image gives
// its node binary cap_net_raw as a file capability, and its pod runs as UID 65532 with only NET_RAW. A container
// runtime is emulated with capsh (bounding and permitted sets, user, no_new_privs, then exec), and the speaker's
// own AF_PACKET addon opens a socket on the loopback of a network namespace made for this test (nothing is sent).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { root } from "./helm.ts";

const UID = "65532";

describe("the speaker's capability as a non-root user", () => {
  const netns = `bollard-pkgcap-${randomBytes(3).toString("hex")}`;
  let dir: string;
  let fileCapNode: string;
  let probe: string;
  let allButNetRaw: string;
  let all: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bollard-pkgcap-"));
    await chmod(dir, 0o755);
    fileCapNode = join(dir, "node");
    await copyFile(process.execPath, fileCapNode);
    // What the Containerfile's speaker stage does to its node binary.
    execFileSync("setcap", ["cap_net_raw+ep", fileCapNode]);
    probe = join(dir, "probe.ts");
    const l2 = join(root, "packages/speaker/src/l2");
    await writeFile(
      probe,
      `import { openPacketSocket } from ${JSON.stringify(join(l2, "packet-socket.ts"))};
import { arpRequestFilter } from ${JSON.stringify(join(l2, "bpf.ts"))};
try {
  const socket = openPacketSocket({ ifindex: 1, ethertype: 0x0806, filter: arpRequestFilter, onFrame() {}, onError() {} });
  socket.close();
  console.log("opened");
} catch (err) {
  console.log("refused: " + err.message);
}
`,
      { mode: 0o644 },
    );
    const bounding = /^Bounding set =(.*)$/m.exec(execFileSync("capsh", ["--print"], { encoding: "utf8" }))?.[1] ?? "";
    const caps = bounding.split(",").filter((c) => c !== "");
    assert.ok(caps.includes("cap_net_raw"), "the test needs CAP_NET_RAW itself (run as root)");
    allButNetRaw = caps.filter((c) => c !== "cap_net_raw").join(",");
    all = caps.join(",");
    execFileSync("ip", ["netns", "add", netns]);
    execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"]);
  });

  after(async () => {
    spawnSync("ip", ["netns", "del", netns]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Starts `node probe.ts` the way a runtime starts a container process, and says what came of it. */
  function start(options: { node: string; bounding: "NET_RAW" | "none"; permitted: "NET_RAW" | "none"; noNewPrivs: boolean }): string {
    const args = ["netns", "exec", netns, "capsh", `--drop=${options.bounding === "NET_RAW" ? allButNetRaw : all}`];
    args.push("--keep=1", `--gid=${UID}`, `--uid=${UID}`, `--caps=${options.permitted === "NET_RAW" ? "cap_net_raw=ep" : "="}`);
    if (options.noNewPrivs) args.push("--no-new-privs");
    args.push(`--shell=${options.node}`, "--", probe);
    const result = spawnSync("ip", args, { encoding: "utf8", cwd: dir });
    return `${result.stdout}${result.stderr}`.trim();
  }

  it("opens AF_PACKET with the image's file capability under containerd/CRI-O and allowPrivilegeEscalation: false", () => {
    assert.equal(start({ node: fileCapNode, bounding: "NET_RAW", permitted: "NET_RAW", noNewPrivs: true }), "opened");
  });

  it("cannot without the file capability: a non-root process loses its capabilities at exec", () => {
    assert.match(start({ node: process.execPath, bounding: "NET_RAW", permitted: "NET_RAW", noNewPrivs: true }), /^refused: .*Operation not permitted/);
  });

  it("needs allowPrivilegeEscalation: true where the runtime empties the permitted set (Docker-based)", () => {
    assert.match(start({ node: fileCapNode, bounding: "NET_RAW", permitted: "none", noNewPrivs: true }), /^refused: .*Operation not permitted/);
    assert.equal(start({ node: fileCapNode, bounding: "NET_RAW", permitted: "none", noNewPrivs: false }), "opened");
  });

  it("refuses to start at all in a pod that did not add NET_RAW", () => {
    // The kernel refuses the exec (EPERM): the file's permitted capability is outside the bounding set.
    assert.match(start({ node: fileCapNode, bounding: "none", permitted: "none", noNewPrivs: false }), /^execve '.*node' failed!$/);
  });
});
