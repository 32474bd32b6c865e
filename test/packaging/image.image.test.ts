// The images as built by `npm run image` (deploy/container/build.sh), then run with podman: reproducible digests,
// user 65532 on a read-only root, warm from the compile cache filled in the build, no setuid file, and the speaker's NET_RAW as a file capability that works only
// where the container's bounding set allows it. Minutes long, so `npm test` leaves it out; .ci/run runs it:
//   npx node test/run.ts test/packaging/image.image.test.ts
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SNAPSHOT_VERSION } from "@bollard/dataplane";
import { root } from "./helm.ts";

type Built = { bollard: string; speaker: string; bollardDigest: string; speakerDigest: string; seconds: number; env: Record<string, string> };

function build(out: string, extra: string[]): Built {
  const started = Date.now();
  execFileSync("bash", [join(root, "deploy/container/build.sh"), "--out", out, ...extra], { stdio: ["ignore", "inherit", "inherit"] });
  const env = Object.fromEntries(
    readFileSync(join(out, "images.env"), "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split("=", 2) as [string, string]),
  );
  return {
    bollard: env.BOLLARD_IMAGE ?? "",
    speaker: env.BOLLARD_SPEAKER_IMAGE ?? "",
    bollardDigest: env.BOLLARD_DIGEST ?? "",
    speakerDigest: env.BOLLARD_SPEAKER_DIGEST ?? "",
    seconds: Math.round((Date.now() - started) / 1000),
    env,
  };
}

// runc: crun refuses hosts whose cgroups are in hybrid mode. Lowered limits: a runtime without CAP_SYS_RESOURCE
// (some VMs) may not set the defaults podman asks for.
const podmanRun = ["--runtime", "runc", "run", "--rm", "--pull=never", "--network=none", "--read-only", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
function podman(args: string[]): { code: number; out: string } {
  const result = spawnSync("podman", [...podmanRun, ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: result.status ?? -1, out: `${result.stdout}${result.stderr}`.trim() };
}

// Opens an AF_PACKET socket on the container's loopback with the speaker's own addon (nothing is sent).
const probe = `import { openPacketSocket } from "/app/packages/speaker/src/l2/packet-socket.ts";
import { arpRequestFilter } from "/app/packages/speaker/src/l2/bpf.ts";
try {
  openPacketSocket({ ifindex: 1, ethertype: 0x0806, filter: arpRequestFilter, onFrame() {}, onError() {} }).close();
  console.log("opened");
} catch (err) {
  console.log("refused: " + err.message);
}`;

// Loads the Rust data plane's N-API module (built inside the image build) and calls into it.
const dataPlaneProbe = `import { loadNative } from "/app/packages/dataplane/src/native.ts";
const native = loadNative();
console.log(JSON.stringify({ snapshotVersion: native.snapshotVersion(), dataPlane: typeof native.DataPlane, normalized: String(native.normalizePath(Buffer.from("/a/./b/../c"))) }));`;

describe("the images", () => {
  const dirs = [mkdtempSync(join(tmpdir(), "bollard-image-a-")), mkdtempSync(join(tmpdir(), "bollard-image-b-"))];
  let first: Built;
  let second: Built;

  before(() => {
    first = build(dirs[0] as string, []);
    second = build(dirs[1] as string, ["--no-cache"]);
  });
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("are reproducible: a second build from the same commit gives the same digests", (t) => {
    t.diagnostic(`first build ${first.seconds} s, second ${second.seconds} s (no layer cache; root file systems cached)`);
    for (const [key, value] of Object.entries(first.env)) t.diagnostic(`${key}=${value}`);
    assert.match(first.bollardDigest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(second.bollardDigest, first.bollardDigest);
    assert.equal(second.speakerDigest, first.speakerDigest);
    assert.notEqual(first.speakerDigest, first.bollardDigest);
  });

  it("run bollard --version as user 65532 on a read-only root", () => {
    const version = (JSON.parse(readFileSync(join(root, "packages/cli/package.json"), "utf8")) as { version: string }).version;
    for (const image of [first.bollard, first.speaker]) {
      const config = execFileSync("podman", ["image", "inspect", "--format", "{{.Config.User}}", image], { encoding: "utf8" }).trim();
      assert.equal(config, "65532:65532", image);
    }
    assert.deepEqual(podman([first.bollard, "--version"]), { code: 0, out: `bollard ${version}` });
    assert.deepEqual(podman(["--user", "65532:65532", "--cap-drop=ALL", "--cap-add=NET_RAW", first.speaker, "--version"]), {
      code: 0,
      out: `bollard ${version}`,
    });
    // The root file system really is read-only to the process.
    const write = podman(["--entrypoint", "/usr/local/bin/node", first.bollard, "-e", "require('fs').writeFileSync('/app/x', '')"]);
    assert.notEqual(write.code, 0);
    assert.match(write.out, /EROFS|read-only file system/i);
  });

  it("start warm from the compile cache filled in the build: Node's TypeScript stripper never loaded", (t) => {
    // Reports at exit whether amaro (the stripper) was loaded, and the process's peak RSS.
    const exitProbe = `data:text/javascript,process.on("exit",()=>console.log(JSON.stringify({amaro:process.moduleLoadList.some((m)=>m.includes("amaro")),rss:Math.round(process.resourceUsage().maxRSS/1024)})))`;
    const run = (image: string, extra: string[]) => {
      const r = podman(["--cap-drop=ALL", ...extra, "--entrypoint", "/usr/local/bin/node", image, "--import", exitProbe, "/app/packages/cli/bin/bollard.js", "explain", "--help"]);
      assert.equal(r.code, 0, r.out);
      return JSON.parse(r.out.split("\n").at(-1) as string) as { amaro: boolean; rss: number };
    };
    const bollard = run(first.bollard, []);
    const speaker = run(first.speaker, ["--cap-add=NET_RAW"]);
    const cold = run(first.bollard, ["--env", "BOLLARD_COMPILE_CACHE=off"]);
    t.diagnostic(`peak RSS of \`bollard explain --help\`: warm ${bollard.rss} MiB (speaker image ${speaker.rss} MiB), cache off ${cold.rss} MiB`);
    assert.equal(bollard.amaro, false);
    assert.equal(speaker.amaro, false, "the speaker's node (a file capability: Node ignores NODE_* variables) finds it too");
    assert.equal(cold.amaro, true);
  });

  it("hold no setuid or setgid file, and only the speaker's node has a file capability", () => {
    for (const image of [first.bollard, first.speaker]) {
      const mount = execFileSync("podman", ["image", "mount", image], { encoding: "utf8" }).trim();
      try {
        assert.equal(execFileSync("find", [mount, "-xdev", "-perm", "/6000"], { encoding: "utf8" }), "", `${image}: setuid/setgid files`);
        const caps = execFileSync("getcap", ["-r", mount], { encoding: "utf8" }).trim().replaceAll(mount, "");
        assert.equal(caps, image === first.speaker ? "/usr/local/bin/node cap_net_raw=ep" : "", image);
      } finally {
        execFileSync("podman", ["image", "unmount", image]);
      }
    }
  });

  it("carry the native data plane, built in the image build, and load it as 65532 on a read-only root", () => {
    const loaded = podman(["--cap-drop=ALL", "--entrypoint", "/usr/local/bin/node", first.bollard, "--input-type=module", "-e", dataPlaneProbe]);
    assert.equal(loaded.code, 0, loaded.out);
    assert.deepEqual(JSON.parse(loaded.out), { snapshotVersion: SNAPSHOT_VERSION, dataPlane: "function", normalized: "/a/c" });
    // The crate's sources stay out of the images: only the built module ships.
    const mount = execFileSync("podman", ["image", "mount", first.bollard], { encoding: "utf8" }).trim();
    try {
      assert.ok(existsSync(join(mount, "app/packages/dataplane/build/dataplane.node")));
      assert.ok(!existsSync(join(mount, "app/packages/dataplane/native")), "no Rust sources in the image");
    } finally {
      execFileSync("podman", ["image", "unmount", first.bollard]);
    }
  });

  it("let the speaker open AF_PACKET as 65532 with only NET_RAW, and nothing else", () => {
    const run = (image: string, caps: string[]) =>
      podman(["--cap-drop=ALL", ...caps, "--entrypoint", "/usr/local/bin/node", image, "--input-type=module", "-e", probe]);
    assert.deepEqual(run(first.speaker, ["--cap-add=NET_RAW"]), { code: 0, out: "opened" });
    // The chart's speaker: allowPrivilegeEscalation false, so no_new_privs is set too.
    assert.deepEqual(run(first.speaker, ["--cap-add=NET_RAW", "--security-opt=no-new-privileges"]), { code: 0, out: "opened" });
    // Without NET_RAW in the bounding set the kernel refuses to exec the speaker's node at all.
    const refused = run(first.speaker, []);
    assert.notEqual(refused.code, 0);
    assert.match(refused.out, /operation not permitted/i);
    // The controller/ingress image as the chart runs it (every capability dropped) cannot open one. (podman, unlike
    // containerd and CRI-O, also hands a non-root user the capabilities a run adds, so NET_RAW there would work.)
    assert.match(run(first.bollard, []).out, /^refused: .*(EPERM|not permitted)/i);
  });
});
