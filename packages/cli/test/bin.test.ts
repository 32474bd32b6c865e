// The installed entry point bin/bollard.js: it checks the Node version before it loads any TypeScript, so an old
// Node prints how to run Bollard instead of ERR_UNKNOWN_FILE_EXTENSION.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { compileCacheDir } from "../bin/compile-cache.js";
import { nodeVersionProblem } from "../bin/node-version.js";

const run = promisify(execFile);
const packageDir = resolve(import.meta.dirname, "..");
const bin = join(packageDir, "bin", "bollard.js");

describe("nodeVersionProblem", () => {
  const cases: { version: string; ok: boolean }[] = [
    { version: "24.0.0", ok: true },
    { version: "24.21.0", ok: true },
    { version: "26.1.0", ok: true },
    { version: "23.11.1", ok: false },
    { version: "22.19.0", ok: false },
    { version: "20.20.2", ok: false },
    { version: "garbage", ok: false },
  ];
  for (const c of cases) {
    test(c.version, () => {
      const problem = nodeVersionProblem(c.version, "/usr/bin/node");
      if (c.ok) assert.equal(problem, undefined);
      else {
        assert.match(problem ?? "", /needs Node >= 24/);
        assert.match(problem ?? "", /npx bollard/);
        assert.match(problem ?? "", new RegExp(`Node ${c.version} \\(/usr/bin/node\\)`));
      }
    });
  }
});

test("bollard.js --version under the pinned Node prints the package version", async () => {
  const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string };
  const { stdout } = await run(process.execPath, [bin, "--version"]);
  assert.equal(stdout, `bollard ${version}\n`);
});

// Every `node` on PATH outside node_modules (the machine's own): an old one must get the one-line advice and
// exit 1, never a stack trace; a new one must run the command.
const machineNodes = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((dir) => dir !== "" && !dir.includes("node_modules"))
  .map((dir) => join(dir, "node"))
  .filter((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

describe("bollard.js under the machine's own Node", () => {
  if (machineNodes.length === 0) test("no node on PATH outside node_modules", { skip: "nothing to run" }, () => {});
  for (const node of new Set(machineNodes.map((file) => realpathSync(file)))) {
    const version = execFileSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    test(`${node} (${version})`, async () => {
      const result = await run(node, [bin, "--version"]).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      if (nodeVersionProblem(version, node) === undefined) {
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^bollard \d+\.\d+\.\d+\n$/);
      } else {
        assert.equal(result.code, 1);
        assert.equal(result.stdout, "");
        assert.equal(result.stderr, `${nodeVersionProblem(version, node)}\n`);
        assert.doesNotMatch(result.stderr, /ERR_UNKNOWN_FILE_EXTENSION/);
      }
    });
  }
});

describe("compileCacheDir", () => {
  const cases: { env: Record<string, string>; dir: string | undefined }[] = [
    { env: { BOLLARD_COMPILE_CACHE: "/var/cache/b", HOME: "/home/u" }, dir: "/var/cache/b" },
    { env: { BOLLARD_COMPILE_CACHE: "off", HOME: "/home/u" }, dir: undefined },
    { env: { BOLLARD_COMPILE_CACHE: "", HOME: "/home/u" }, dir: "/home/u/.cache/bollard/compile-cache" },
    { env: { XDG_CACHE_HOME: "/xdg", HOME: "/home/u" }, dir: "/xdg/bollard/compile-cache" },
    { env: { XDG_CACHE_HOME: "relative", HOME: "/home/u" }, dir: "/home/u/.cache/bollard/compile-cache" },
    { env: { HOME: "/home/u" }, dir: "/home/u/.cache/bollard/compile-cache" },
    // No home (the images' user has /nonexistent; "/" is no user's own): no cache rather than a shared one.
    { env: { HOME: "/" }, dir: undefined },
    { env: {}, dir: undefined },
  ];
  for (const c of cases) test(JSON.stringify(c.env), () => assert.equal(compileCacheDir(c.env), c.dir));
});

describe("bollard.js with the compile cache", () => {
  // Whether Node's TypeScript stripper (amaro, ~25 MiB resident) was loaded: what a warm cache saves.
  const probeDir = mkdtempSync(join(tmpdir(), "bollard-cc-probe-"));
  after(() => rmSync(probeDir, { recursive: true, force: true }));
  const probe = join(probeDir, "probe.mjs");
  writeFileSync(probe, 'process.on("exit", () => process.stderr.write("amaro loaded: " + process.moduleLoadList.some((m) => m.includes("amaro")) + "\\n"));\n');
  chmodSync(probeDir, 0o755);
  const version = (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string }).version;
  const bollard = async (env: Record<string, string>, user?: number) => {
    const argv = [process.execPath, "--import", probe, bin, "--version"];
    const [cmd, ...args] = user === undefined ? argv : ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--clear-groups", "--", ...argv];
    const { stdout, stderr } = await run(cmd as string, args, { env: { ...process.env, ...env } });
    assert.equal(stdout, `bollard ${version}\n`);
    return stderr;
  };
  const warm = (env: Record<string, string>, user?: number) => {
    const argv = [process.execPath, join(packageDir, "bin", "warm-compile-cache.js")];
    const [cmd, ...args] = user === undefined ? argv : ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--clear-groups", "--", ...argv];
    return execFileSync(cmd as string, args, { env: { ...process.env, ...env }, encoding: "utf8" });
  };

  test("a first run fills the cache, the next one runs from it without the TypeScript stripper", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-cc-"));
    try {
      assert.match(await bollard({ BOLLARD_COMPILE_CACHE: dir }), /amaro loaded: true/);
      assert.equal(readdirSync(dir).length, 1, "one directory per Node version, V8 flags, CPU and user");
      assert.match(await bollard({ BOLLARD_COMPILE_CACHE: dir }), /^amaro loaded: false\n$/);
      // Different V8 flags that change code generation: another cache, not a wrong one.
      const { stderr } = await run(process.execPath, ["--no-opt", "--import", probe, bin, "--version"], { env: { ...process.env, BOLLARD_COMPILE_CACHE: dir } });
      assert.match(stderr, /amaro loaded: true/);
      assert.equal(readdirSync(dir).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("off, or a directory that cannot be made: the command runs without it (and says so when it was named)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-cc-"));
    try {
      const file = join(dir, "a-file");
      writeFileSync(file, "");
      const named = await bollard({ BOLLARD_COMPILE_CACHE: join(file, "cache") });
      assert.match(named, /^bollard: compile cache in .*a-file\/cache not used \(Cannot create cache directory: not a directory\); running without it\n/);
      assert.match(named, /amaro loaded: true/);
      assert.match(await bollard({ BOLLARD_COMPILE_CACHE: "/proc/bollard-cache" }), /\/proc\/bollard-cache is not a usable directory/);
      assert.equal(await bollard({ BOLLARD_COMPILE_CACHE: "off", HOME: dir }), "amaro loaded: true\n");
      assert.deepEqual(readdirSync(dir), ["a-file"]);
      // The default directory under a home that cannot hold it: silently without.
      assert.equal(await bollard({ HOME: file, XDG_CACHE_HOME: "" }), "amaro loaded: true\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a cache filled ahead (warm-compile-cache.js) and then read-only, as in the images", async () => {
    // As the images do it: filled as the user that runs bollard, then owned by root and read-only. Under root,
    // the user is nobody (root would write through any mode).
    const user = process.getuid?.() === 0 ? 65534 : undefined;
    const dir = mkdtempSync(join(tmpdir(), "bollard-cc-"));
    try {
      chmodSync(dir, 0o755);
      if (user !== undefined) chownSync(dir, user, user);
      assert.match(warm({ BOLLARD_COMPILE_CACHE: dir }, user), /^compile cache warm in /);
      execFileSync("chmod", ["-R", "a+rX,a-w", dir]);
      if (user !== undefined) execFileSync("chown", ["-R", "0:0", dir]);
      const before = execFileSync("ls", ["-lR", "--time-style=full-iso", dir], { encoding: "utf8" });
      assert.equal(await bollard({ BOLLARD_COMPILE_CACHE: dir }, user), "amaro loaded: false\n");
      assert.equal(execFileSync("ls", ["-lR", "--time-style=full-iso", dir], { encoding: "utf8" }), before);
    } finally {
      execFileSync("chmod", ["-R", "u+w", dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
