// The BGP CRDs (deploy/crds, installed by test/run.ts) against the shared API server: MetalLB v0.16 manifests
// apply unchanged, deprecated v1beta1 BGPPeers are stored as v1beta2 with the same fields, and the validations
// MetalLB puts in its schema reject what MetalLB's reject.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CommandError, root, run } from "./helm.ts";

const kubeconfig = process.env.BOLLARD_KUBECONFIG;
const kubectl = process.env.BOLLARD_KUBECTL;

describe("BGP CRDs", () => {
  assert.ok(kubeconfig && kubectl, "BOLLARD_KUBECONFIG and BOLLARD_KUBECTL must be set: run through test/run.ts");
  const ns = `bollard-bgp-crds-${randomBytes(3).toString("hex")}`;
  const k = (args: string[], input?: string) => run(kubectl, ["--kubeconfig", kubeconfig, "-n", ns, ...args], { input });
  const get = (resource: string, name: string) => JSON.parse(k(["get", resource, name, "-o", "json"])) as { apiVersion: string; spec: Record<string, unknown> };

  before(() => {
    k(["create", "namespace", ns]);
  });
  after(() => {
    k(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
  });

  it("apply MetalLB's manifests unchanged, every field kept", () => {
    const manifests = readFileSync(join(root, "test/packaging/fixtures/metallb-bgp.yaml"), "utf8").replaceAll("NAMESPACE", ns);
    const out = k(["apply", "-f", "-"], manifests);
    for (const made of ["bgppeer.metallb.io/sample", "bgppeer.metallb.io/dynamic", "bgppeer.metallb.io/legacy", "bgpadvertisement.metallb.io/local", "community.metallb.io/communities", "bfdprofile.metallb.io/fast"]) {
      assert.match(out, new RegExp(`${made} created`), out);
    }
    const sample = get("bgppeers.v1beta2.metallb.io", "sample");
    assert.equal(sample.spec.connectTime, "10s");
    assert.equal(sample.spec.enableGracefulRestart, true);
    assert.deepEqual(sample.spec.nodeSelectors, [{ matchLabels: { rack: "frontend" }, matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["hostA", "hostB"] }] }]);
    const dynamic = get("bgppeers.v1beta2.metallb.io", "dynamic");
    assert.equal(dynamic.spec.myASN, 4200000000, "4-octet AS numbers fit");
    assert.equal(dynamic.spec.peerPort, 179, "peerPort defaults to 179 as in MetalLB");
    assert.equal(dynamic.spec.dualStackAddressFamily, false);
    const adv = get("bgpadvertisements.metallb.io", "local");
    assert.deepEqual(adv.spec.communities, ["65535:65282", "large:64500:1:2", "no-advertise"]);
    assert.equal(adv.spec.aggregationLength, 24);
    assert.equal(adv.spec.localPref, 100);
    assert.equal(get("bfdprofiles.metallb.io", "fast").spec.minimumTtl, 254);
  });

  it("store a v1beta1 BGPPeer as v1beta2 with the same fields, and serve it at both versions", () => {
    const asV2 = get("bgppeers.v1beta2.metallb.io", "legacy");
    assert.equal(asV2.apiVersion, "metallb.io/v1beta2");
    assert.equal(asV2.spec.peerAddress, "10.0.0.1");
    assert.equal(asV2.spec.holdTime, "90s");
    assert.equal(asV2.spec.peerPort, 179, "the v1beta2 default applies to objects written as v1beta1");
    assert.deepEqual(asV2.spec.nodeSelectors, [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["hostA"] }] }]);
    const asV1 = get("bgppeers.v1beta1.metallb.io", "legacy");
    assert.equal(asV1.apiVersion, "metallb.io/v1beta1");
    assert.equal(asV1.spec.peerASN, 64501);
  });

  it("warn that v1beta1 BGPPeer is deprecated, as MetalLB does", () => {
    const peer = `apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: warned}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.0.0.9}\n`;
    const out = run("sh", ["-c", `"$0" --kubeconfig "$1" -n "$2" apply -f - 2>&1`, kubectl, kubeconfig, ns], { input: peer });
    assert.match(out, /v1beta1 is deprecated, please use v1beta2/);
  });

  const rejects = (yaml: string, why: RegExp) =>
    assert.throws(() => k(["apply", "-f", "-"], yaml), (err: unknown) => err instanceof CommandError && why.test(err.stderr));

  it("reject what MetalLB's schema rejects", () => {
    const peer = (spec: string, name = "bad") => `apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
    rejects(peer("{myASN: 1, peerAddress: 10.0.0.1, connectTime: 1500ms}"), /whole number of seconds/);
    rejects(peer("{myASN: 1, peerAddress: 10.0.0.1, connectTime: 70000s}"), /between 1 seconds to 65535/);
    rejects(peer("{myASN: 4294967296, peerAddress: 10.0.0.1}"), /myASN/);
    rejects(peer("{myASN: 1, dynamicASN: sometimes, peerAddress: 10.0.0.1}"), /dynamicASN/);
    rejects(peer("{myASN: 1, peerAddress: 10.0.0.1, peerPort: 0}"), /peerPort/);
    rejects(`apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {myASN: 1, peerAddress: 10.0.0.1}\n`, /peerASN: Required/);
    rejects(`apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: bad}\nspec: {detectMultiplier: 1}\n`, /detectMultiplier/);
    rejects(`apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bad}\nspec: {aggregationLength: 0}\n`, /aggregationLength/);
  });

  it("keep enableGracefulRestart fixed after creation", () => {
    const peer = (gr: boolean) => `apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: gr}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, enableGracefulRestart: ${gr}}\n`;
    k(["apply", "-f", "-"], peer(true));
    rejects(peer(false), /EnableGracefulRestart cannot be changed after creation/);
  });

  it("keep a ServiceBGPStatus's node and Service fixed, and its peers in the status subresource", () => {
    k(["apply", "-f", "-"], `apiVersion: metallb.io/v1beta1\nkind: ServiceBGPStatus\nmetadata: {name: web-node1}\n`);
    const patch = (status: object) =>
      k(["patch", "servicebgpstatuses.metallb.io", "web-node1", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
    patch({ node: "node1", serviceName: "web", serviceNamespace: "default", peers: ["sample"] });
    assert.throws(() => patch({ node: "node2" }), (err: unknown) => err instanceof CommandError && /Value is immutable/.test(err.stderr));
    patch({ peers: ["sample", "dynamic"] });
    const status = JSON.parse(k(["get", "servicebgpstatuses.metallb.io", "web-node1", "-o", "jsonpath={.status}"]));
    assert.deepEqual(status, { node: "node1", serviceName: "web", serviceNamespace: "default", peers: ["sample", "dynamic"] });
  });
});
