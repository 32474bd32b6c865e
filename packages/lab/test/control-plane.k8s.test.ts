// The shared control plane started by test/run.ts is real: the API server answers with RBAC on, the CRDs are
// MetalLB's and a malformed pool is refused with a message naming the field.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

const kubeconfig = process.env.BOLLARD_KUBECONFIG;
const kubectlBin = process.env.BOLLARD_KUBECTL ?? "kubectl";

async function kubectl(args: string[], stdin?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(kubectlBin, ["--kubeconfig", kubeconfig ?? "", ...args], (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

const ns = `cp-test-${randomBytes(3).toString("hex")}`;

describe("control plane", () => {
  before(async () => {
    assert.ok(kubeconfig, "BOLLARD_KUBECONFIG must be set: run through test/run.ts");
    assert.equal((await kubectl(["create", "namespace", ns])).code, 0);
  });
  after(async () => {
    await kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  it("is a real kube-apiserver with RBAC authorization", async () => {
    const version = JSON.parse((await kubectl(["version", "-o", "json"])).stdout) as { serverVersion: { gitVersion: string } };
    assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+/);
    const anonymous = await kubectl(["auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:nobody"]);
    assert.equal(anonymous.stdout.trim(), "no");
    const admin = await kubectl(["auth", "can-i", "list", "secrets"]);
    assert.equal(admin.stdout.trim(), "yes");
  });

  it("applies MetalLB's IPAddressPool and L2Advertisement manifests unchanged and reads them back", async () => {
    const manifests = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: mylocal-net-pool, namespace: ${ns}}
spec:
  addresses: [192.168.67.240-192.168.67.250]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: example, namespace: ${ns}}
spec:
  ipAddressPools: [mylocal-net-pool]
`;
    const applied = await kubectl(["apply", "-f", "-"], manifests);
    assert.equal(applied.code, 0, applied.stderr);
    const pool = JSON.parse((await kubectl(["get", "ipaddresspool", "-n", ns, "mylocal-net-pool", "-o", "json"])).stdout);
    assert.deepEqual(pool.spec.addresses, ["192.168.67.240-192.168.67.250"]);
    assert.equal(pool.spec.autoAssign, true, "autoAssign defaults to true as in MetalLB");
    assert.equal(pool.spec.avoidBuggyIPs, false);
    const adv = JSON.parse((await kubectl(["get", "l2advertisement", "-n", ns, "example", "-o", "json"])).stdout);
    assert.deepEqual(adv.spec.ipAddressPools, ["mylocal-net-pool"]);
  });

  it("refuses a malformed pool with a message naming the field", async () => {
    const cases = [
      { spec: "{autoAssign: \"yes\", addresses: [10.0.0.0/24]}", field: "spec.autoAssign" },
      { spec: "{addresses: 10.0.0.0/24}", field: "spec.addresses" },
      { spec: "{autoAssign: true}", field: "spec.addresses" },
      {
        spec: "{addresses: [10.0.0.0/24], serviceAllocation: {serviceSelectors: [{matchExpressions: [{key: a, operator: Maybe}]}]}}",
        field: "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].operator",
      },
    ];
    for (const c of cases) {
      const res = await kubectl(
        ["apply", "-f", "-"],
        `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bad, namespace: ${ns}}\nspec: ${c.spec}\n`,
      );
      assert.notEqual(res.code, 0, `accepted ${c.spec}`);
      assert.ok(res.stderr.includes(c.field), `error for ${c.spec} should name ${c.field}: ${res.stderr}`);
    }
    const listed = await kubectl(["get", "ipaddresspool", "-n", ns, "bad", "--ignore-not-found", "-o", "name"]);
    assert.equal(listed.stdout.trim(), "");
  });
});
