// How `--runtime podman` turns a workload's securityContext into podman flags, checked on the manifest the lab
// installs (deploy/manifests/bollard.yaml) and on the edges the mapping must not get wrong.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { type ContainerSecurity, securityFlags } from "../src/lab/containers.ts";

const manifest = join(import.meta.dirname, "../../../deploy/manifests/bollard.yaml");

describe("securityFlags", () => {
  const cases: { name: string; sc: ContainerSecurity; want: string[] }[] = [
    { name: "nothing asked, nothing added", sc: {}, want: [] },
    {
      name: "the speaker's context: only NET_RAW back, no escalation, read-only root",
      sc: {
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"], add: ["NET_RAW"] },
      },
      want: ["--user", "65532:65532", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop=ALL", "--cap-add=NET_RAW"],
    },
    { name: "a group defaults to the user's id", sc: { runAsUser: 1000 }, want: ["--user", "1000:1000"] },
    {
      name: "allowPrivilegeEscalation true or unset sets no no_new_privs",
      sc: { allowPrivilegeEscalation: true, readOnlyRootFilesystem: false },
      want: [],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(securityFlags(c.sc), c.want));

  it("gives every workload of the rendered manifest its user, a read-only root and dropped capabilities", () => {
    const workloads = YAML.parseAllDocuments(readFileSync(manifest, "utf8"))
      .map((d) => d.toJS())
      .filter((d) => d?.kind === "Deployment" || d?.kind === "DaemonSet");
    assert.deepEqual(workloads.map((w) => w.metadata.name).sort(), ["bollard-controller", "bollard-ingress", "bollard-speaker"]);
    for (const w of workloads) {
      const flags = securityFlags(w.spec.template.spec.containers[0].securityContext);
      const caps = w.metadata.name === "bollard-speaker" ? ["--cap-add=NET_RAW"] : [];
      assert.deepEqual(flags, ["--user", "65532:65532", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop=ALL", ...caps], w.metadata.name);
    }
  });
});
