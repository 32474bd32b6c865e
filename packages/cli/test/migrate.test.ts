// `bollard migrate` run as users run it: a report of what becomes of ingress-nginx Ingresses and annotations.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { MigrationReport } from "../src/commands/migrate.ts";
import { runBollard } from "./helpers.ts";

const fixtures = join(import.meta.dirname, "fixtures", "migrate");
const migrate = (args: string[]) => runBollard(["migrate", "-f", fixtures, ...args]);

test("the JSON report: each ingress-nginx Ingress, each annotation's verdict, the ConfigMap's keys", async () => {
  const { code, stdout, stderr } = await migrate(["-o", "json", "--configmap", "ingress-nginx/ingress-nginx-controller"]);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout) as MigrationReport;
  assert.deepEqual(
    report.ingresses.map((i) => [i.ingress, i.refused, i.annotations.map((a) => [a.annotation.replace(/^.*\//, ""), a.verdict, a.refuses])]),
    [
      [
        "web/admin",
        true,
        [
          ["auth-made-up", "unsupported", true],
          ["force-ssl-redirect", "invalid", false],
        ],
      ],
      [
        "web/shop",
        false,
        [
          ["configuration-snippet", "unsupported", false],
          ["ssl-redirect", "supported", false],
        ],
      ],
    ],
  );
  assert.match(report.ingresses[1]?.annotations[0]?.message ?? "", /never evaluates user text/);
  assert.deepEqual(
    report.configMap.map((c) => [c.key, c.verdict]),
    [
      ["use-forwarded-headers", "different"],
      ["worker-processes", "unsupported"],
    ],
  );
  assert.deepEqual(report.summary, { ingresses: 2, refused: 1, supported: 1, different: 0, unsupported: 2, invalid: 1 });
  // the Endpoints are not in the files, which is not an annotation problem: no "problems" for a present Service
  assert.deepEqual(report.ingresses[1]?.problems, []);
});

test("the text report names every annotation and what it came to; --strict fails when something cannot be served", async () => {
  const text = await migrate([]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^web\/admin {2}— would answer 503 until fixed/m);
  assert.match(text.stdout, /UNSUPPORTED → 503 {4}auth-made-up: "on"/);
  assert.match(text.stdout, /INVALID {14}force-ssl-redirect: "maybe"\n {23}"maybe" is neither "true" nor "false"; false is used/);
  assert.match(text.stdout, /2 Ingresses; annotations: 1 supported, 0 supported with a difference, 2 unsupported, 1 invalid; 1 Ingresses would answer 503/);
  assert.equal((await migrate(["--strict"])).code, 1);
});

test("class flags choose other Ingresses; unreadable input is one line and exit 2", async () => {
  const traefik = JSON.parse((await migrate(["-o", "json", "--watch-ingress-class", "traefik"])).stdout) as MigrationReport;
  assert.deepEqual(
    traefik.ingresses.map((i) => i.ingress),
    ["web/other"],
  );
  const missing = await runBollard(["migrate", "-f", join(fixtures, "absent.yaml")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^bollard migrate: .*absent\.yaml/);
  assert.equal((await runBollard(["migrate"])).code, 2);
});
