// The release workflow cannot run here (no GitHub, no ghcr.io): it is linted with actionlint, built from the Go
// module proxy on first use, and held to building with the very script the tests run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { CommandError, root, run } from "./helm.ts";

const workflowPath = join(root, ".github/workflows/release.yml");

type Step = { run?: string; uses?: string; with?: Record<string, unknown> };
type Workflow = { jobs: Record<string, { steps: Step[]; strategy?: { matrix?: { include?: { arch: string }[] } } }> };

describe("release workflow", () => {
  it("passes actionlint", () => {
    run("bash", [join(root, "test/harness/install-actionlint.sh")]);
    const actionlint = run("bash", [join(root, "test/harness/install-actionlint.sh"), "--print-path"]).trim();
    try {
      assert.equal(run(actionlint, ["-no-color", workflowPath]), "");
    } catch (err) {
      assert.fail(err instanceof CommandError ? `actionlint:\n${err.stderr}` : String(err));
    }
  });

  it("builds both architectures with npm run image, which is deploy/container/build.sh", () => {
    const workflow = YAML.parse(readFileSync(workflowPath, "utf8")) as Workflow;
    const images = workflow.jobs.images;
    assert.ok(images);
    assert.deepEqual(images.strategy?.matrix?.include?.map((m) => m.arch).sort(), ["amd64", "arm64"]);
    assert.ok(images.steps.some((s) => s.run?.includes("npm run image")), "a step runs npm run image");
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.image, "bash deploy/container/build.sh");
  });

  it("publishes the chart as OCI, pins digests in the rendered manifest and attaches a CycloneDX SBOM", () => {
    const steps = (YAML.parse(readFileSync(workflowPath, "utf8")) as Workflow).jobs.publish?.steps ?? [];
    const script = steps.map((s) => s.run ?? "").join("\n");
    assert.match(script, /helm" push dist\/bollard-\*\.tgz "oci:\/\//);
    assert.match(script, /render\.sh[\s\S]*--set image\.digest=[\s\S]*--set speaker\.image\.digest=/);
    assert.match(script, /npm sbom --sbom-format cyclonedx --omit dev/);
  });

  it("has versions that agree, and an SBOM step that works", () => {
    const version = (file: string) => (JSON.parse(readFileSync(join(root, file), "utf8")) as { version: string }).version;
    const appVersion = /^appVersion: "([^"]+)"$/m.exec(readFileSync(join(root, "deploy/helm/bollard/Chart.yaml"), "utf8"))?.[1];
    assert.equal(version("package.json"), version("packages/cli/package.json"));
    assert.equal(version("package.json"), appVersion);
    const sbom = JSON.parse(run("npm", ["sbom", "--sbom-format", "cyclonedx", "--omit", "dev"])) as {
      bomFormat: string;
      components: { name: string }[];
    };
    assert.equal(sbom.bomFormat, "CycloneDX");
    const names = sbom.components.map((c) => c.name);
    for (const dependency of ["@kubernetes/client-node", "pino", "prom-client", "node-forge"]) assert.ok(names.includes(dependency), dependency);
    for (const dev of ["typescript", "@biomejs/biome", "lerna", "node-gyp"]) assert.ok(!names.includes(dev), `dev dependency ${dev} in the SBOM`);
  });
});
