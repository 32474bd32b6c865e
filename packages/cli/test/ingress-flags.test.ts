// `bollard ingress` flag checking: a bad value of a data-plane limit is a usage error (exit 2) naming the flag,
// before anything starts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runBollard } from "./helpers.ts";

const cases: { args: string[]; message: RegExp }[] = [
  { args: ["--request-buffering", "maybe"], message: /--request-buffering "maybe" is neither on nor off/ },
  { args: ["--client-body-buffer-size", "lots"], message: /--client-body-buffer-size "lots" is not a size/ },
  { args: ["--client-body-timeout", "0"], message: /--client-body-timeout "0" is not a positive number of seconds/ },
  { args: ["--max-header-size", "16q"], message: /--max-header-size "16q" is not a size/ },
  { args: ["--http2-max-concurrent-streams", "0"], message: /--http2-max-concurrent-streams "0" is not an integer/ },
  { args: ["--http2-max-resets-per-second", "x"], message: /--http2-max-resets-per-second "x" is not an integer/ },
  // the data plane's listeners bind an IP address, never a name to look up
  { args: ["--bind-address", "localhost"], message: /--bind-address "localhost" is not an IP address/ },
];

for (const c of cases) {
  test(`bollard ingress ${c.args.join(" ")} → usage error`, async () => {
    const { code, stderr } = await runBollard(["ingress", ...c.args]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, c.message);
  });
}

test("bollard ingress --help lists the data-plane limits", async () => {
  const { code, stdout } = await runBollard(["ingress", "--help"]);
  assert.equal(code, 0);
  for (const flag of ["--workers", "--request-buffering", "--client-body-buffer-size", "--client-body-timeout", "--max-header-size", "--enable-underscores-in-headers", "--http2-max-concurrent-streams", "--http2-max-resets-per-second"]) {
    assert.ok(stdout.includes(flag), flag);
  }
});
