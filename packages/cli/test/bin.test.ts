// The installed entry point bin/bollard.js: it checks the Node version before it loads any TypeScript, so an old
// Node prints how to run Bollard instead of ERR_UNKNOWN_FILE_EXTENSION.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
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
