// The chart against real API servers: server-side dry runs on the shared one, then real installs on private
// control planes (cluster-scoped objects — CRDs, ClusterRoles, the IngressClass — must not meet other tests'):
// `helm install` + `helm upgrade` keeping the membership key, the static manifest applied with kubectl, and
// `kubectl auth can-i` proving each ServiceAccount may do what its component needs and nothing more.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ControlPlane, startControlPlane } from "@bollard/lab";
import { chartDir, helm, parseManifests, root, run, template } from "./helm.ts";

function sharedApiServer(): { kubeconfig: string; kubectl: string } {
  const kubeconfig = process.env.BOLLARD_KUBECONFIG;
  const kubectl = process.env.BOLLARD_KUBECTL;
  assert.ok(kubeconfig && kubectl, "BOLLARD_KUBECONFIG and BOLLARD_KUBECTL must be set: run through test/run.ts");
  return { kubeconfig, kubectl };
}

const suffix = () => randomBytes(3).toString("hex");

describe("chart on the shared API server (server-side dry run)", () => {
  const { kubeconfig, kubectl } = sharedApiServer();
  const id = suffix();
  const namespaces = [`bollard-pkg-${id}`, `bollard-pkg-config-${id}`, `bollard-pkg-apps-${id}`, `bollard-pkg-certs-${id}`];
  const [release, config, apps, certs] = namespaces as [string, string, string, string];
  const k = (args: string[], input?: string) => run(kubectl, ["--kubeconfig", kubeconfig, ...args], { input });

  before(() => {
    helm();
    for (const ns of namespaces) k(["create", "namespace", ns]);
  });
  after(() => {
    k(["delete", "namespace", "--wait=false", "--ignore-not-found", ...namespaces]);
  });

  for (const [label, set] of [
    ["defaults", []],
    [
      "every option but the ServiceMonitor (its CRD belongs to the Prometheus Operator)",
      [
        "ingress.kind=DaemonSet",
        `ingress.watchNamespace=${apps}`,
        `ingress.defaultSSLCertificate=${certs}/wildcard`,
        "ingress.defaultClass=true",
        `ingress.className=edge-${id}`,
        "loadBalancerClass=bollard.dev/lb",
        `configNamespace=${config}`,
        "controller.replicas=2",
        "speaker.garpRefreshSeconds=30",
        "metrics.secure=true",
        // The test API server is dual-stack: it accepts a RequireDualStack Service.
        "ingress.service.ipFamilyPolicy=RequireDualStack",
        "ingress.service.ipFamilies={IPv4,IPv6}",
      ],
    ],
  ] as const) {
    it(`is accepted by kubectl apply --dry-run=server (${label})`, () => {
      const rendered = template({ release: `pkg-${id}`, namespace: release, set: [...set] });
      const out = k(["apply", "--dry-run=server", "-f", "-", "-o", "name"], rendered);
      const applied = out.trim().split("\n");
      assert.equal(applied.length, parseManifests(rendered).length, out);
      assert.ok(applied.includes(`daemonset.apps/pkg-${id}-bollard-speaker`), out);
    });
  }
});

/** kubectl against a private control plane. */
function kubectlOf(cp: ControlPlane) {
  return (args: string[], input?: string) => run(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { input });
}

type Check = { sa: string; verb: string; resource: string; namespace: string; subresource?: string; name?: string };

/**
 * Asks the API server's authorizer, as `kubectl auth can-i --as` does, but for every check in one request and
 * with the groups a ServiceAccount token really carries. `resource` is "plural[.group]"; namespace "" means
 * every namespace (or a cluster-scoped resource).
 */
function review(cp: ControlPlane, checks: Check[]): { allowed: boolean; reason: string }[] {
  const items = checks.map((c) => {
    const [saNamespace] = c.sa.split(":");
    const dot = c.resource.indexOf(".");
    return {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: `system:serviceaccount:${c.sa}`,
        groups: ["system:serviceaccounts", `system:serviceaccounts:${saNamespace}`, "system:authenticated"],
        resourceAttributes: {
          verb: c.verb,
          resource: dot === -1 ? c.resource : c.resource.slice(0, dot),
          group: dot === -1 ? "" : c.resource.slice(dot + 1),
          ...(c.namespace ? { namespace: c.namespace } : {}),
          ...(c.subresource ? { subresource: c.subresource } : {}),
          ...(c.name ? { name: c.name } : {}),
        },
      },
    };
  });
  // kubectl prints one line per created review, in order.
  const out = kubectlOf(cp)(
    ["create", "-f", "-", "-o", 'jsonpath={.status.allowed}{"\\t"}{.status.reason}{"\\n"}'],
    JSON.stringify({ apiVersion: "v1", kind: "List", items }),
  );
  const lines = out.trimEnd().split("\n");
  assert.equal(lines.length, checks.length, out);
  return lines.map((line) => {
    const [allowed, reason = ""] = line.split("\t");
    return { allowed: allowed === "true", reason };
  });
}

const describeCheck = (c: Check) =>
  `${c.sa} ${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ""}${c.name ? ` ${c.name}` : ""} in ${c.namespace || "every namespace"}`;

describe("helm install and upgrade (private control plane)", () => {
  let cp: ControlPlane;
  let kubectl: ReturnType<typeof kubectlOf>;
  const ns = "metallb-system";
  const helmOn = (args: string[]) => run(helm(), ["--kubeconfig", cp.kubeconfigPath, ...args]);

  before(async () => {
    helm();
    cp = await startControlPlane();
    kubectl = kubectlOf(cp);
  });
  after(async () => {
    await cp?.stop();
  });

  let installNotes = "";
  let membershipKey = "";

  it("installs with defaults: CRDs from the chart, every workload, a generated membership key", () => {
    installNotes = helmOn(["install", "bollard", chartDir, "--namespace", ns, "--create-namespace"]);
    assert.match(installNotes, /STATUS: deployed/);
    kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/ipaddresspools.metallb.io", "crd/l2advertisements.metallb.io", "crd/servicel2statuses.metallb.io", "crd/configurationstates.metallb.io", "crd/bgppeers.metallb.io", "crd/bgpadvertisements.metallb.io", "crd/communities.metallb.io", "crd/bfdprofiles.metallb.io", "crd/servicebgpstatuses.metallb.io"]);
    const names = kubectl(["get", "deployments,daemonsets,services,serviceaccounts", "-n", ns, "-o", "name"]);
    for (const want of [
      "deployment.apps/bollard-controller",
      "deployment.apps/bollard-ingress",
      "daemonset.apps/bollard-speaker",
      "service/bollard-ingress",
      "serviceaccount/bollard-speaker",
    ]) {
      assert.ok(names.includes(want), `${want} in\n${names}`);
    }
    assert.equal(kubectl(["get", "ingressclass", "bollard", "-o", "jsonpath={.spec.controller}"]), "bollard.dev/ingress-controller");
    membershipKey = kubectl(["get", "secret", "bollard-membership", "-n", ns, "-o", "jsonpath={.data.secretkey}"]);
    assert.ok(Buffer.from(membershipKey, "base64").length >= 32);
  });

  it("prints a pool and L2Advertisement that the API server accepts", () => {
    const example = /cat <<'YAML' \| kubectl apply -f -\n([\s\S]*?)\n {2}YAML/.exec(installNotes)?.[1];
    assert.ok(example, `NOTES show an example:\n${installNotes}`);
    const yaml = example.replace(/^ {2}/gm, "");
    const out = kubectl(["apply", "-f", "-"], yaml);
    assert.match(out, /ipaddresspool.metallb.io\/default-pool created/);
    assert.match(out, /l2advertisement.metallb.io\/default created/);
  });

  it("upgrades, keeping the membership key", () => {
    const out = helmOn([
      "upgrade", "bollard", chartDir, "--namespace", ns,
      "--set", "controller.replicas=2", "--set", "ingress.kind=DaemonSet", "--set", "ingress.defaultClass=true",
    ]);
    assert.match(out, /STATUS: deployed/);
    assert.match(out, /REVISION: 2/);
    assert.equal(kubectl(["get", "secret", "bollard-membership", "-n", ns, "-o", "jsonpath={.data.secretkey}"]), membershipKey);
    assert.equal(kubectl(["get", "deployment", "bollard-controller", "-n", ns, "-o", "jsonpath={.spec.replicas}"]), "2");
    assert.equal(kubectl(["get", "daemonset", "bollard-ingress", "-n", ns, "-o", "name"]).trim(), "daemonset.apps/bollard-ingress");
    assert.equal(kubectl(["get", "deployment", "bollard-ingress", "-n", ns, "--ignore-not-found", "-o", "name"]).trim(), "");
    assert.equal(
      kubectl(["get", "ingressclass", "bollard", "-o", "jsonpath={.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}"]),
      "true",
    );
  });

  // [verb, resource ("plural[.group]"), namespace ("" = every namespace), subresource, name]
  type Row = [string, string, string, string?, string?];
  const controller = `${ns}:bollard-controller`;
  const speaker = `${ns}:bollard-speaker`;
  const ingress = `${ns}:bollard-ingress`;
  const allowed: Record<string, Row[]> = {
    [controller]: [
      ["watch", "services", ""],
      ["patch", "services", "default"],
      ["patch", "services", "default", "status"],
      ["list", "namespaces", ""],
      ["watch", "namespaces", ""],
      ["list", "ipaddresspools.metallb.io", ns],
      ["watch", "ipaddresspools.metallb.io", ns],
      ["patch", "ipaddresspools.metallb.io", ns, "status"],
      ["create", "configurationstates.metallb.io", ns],
      ["get", "configurationstates.metallb.io", ns, undefined, "controller"],
      ["patch", "configurationstates.metallb.io", ns, "status", "controller"],
      ["create", "events.events.k8s.io", "default"],
      ["patch", "events.events.k8s.io", ns],
      ["create", "leases.coordination.k8s.io", ns],
      ["get", "leases.coordination.k8s.io", ns, undefined, "bollard-controller"],
      ["update", "leases.coordination.k8s.io", ns, undefined, "bollard-controller"],
    ],
    [speaker]: [
      ["get", "secrets", ns, undefined, "bollard-membership"],
      ["watch", "services", ""],
      ["watch", "endpointslices.discovery.k8s.io", ""],
      ["watch", "nodes", ""],
      ["watch", "ipaddresspools.metallb.io", ns],
      ["watch", "l2advertisements.metallb.io", ns],
      ["watch", "servicel2statuses.metallb.io", ns],
      ["create", "servicel2statuses.metallb.io", ns],
      ["patch", "servicel2statuses.metallb.io", ns, "status"],
      ["delete", "servicel2statuses.metallb.io", ns],
      ["get", "configurationstates.metallb.io", ns, undefined, "speaker-node1"],
      ["create", "configurationstates.metallb.io", ns],
      ["patch", "configurationstates.metallb.io", ns, "status", "speaker-node1"],
      ["watch", "bgppeers.metallb.io", ns],
      ["list", "bgpadvertisements.metallb.io", ns],
      ["watch", "communities.metallb.io", ns],
      ["watch", "bfdprofiles.metallb.io", ns],
      ["create", "servicebgpstatuses.metallb.io", ns],
      ["patch", "servicebgpstatuses.metallb.io", ns, "status"],
      ["delete", "servicebgpstatuses.metallb.io", ns],
      ["create", "events.events.k8s.io", "default"],
    ],
    [ingress]: [
      ["watch", "ingresses.networking.k8s.io", ""],
      ["patch", "ingresses.networking.k8s.io", "default", "status"],
      ["watch", "ingressclasses.networking.k8s.io", ""],
      ["watch", "services", ""],
      ["watch", "endpointslices.discovery.k8s.io", ""],
      ["watch", "secrets", ""],
      ["create", "events.events.k8s.io", "default"],
      ["create", "leases.coordination.k8s.io", ns],
      ["get", "leases.coordination.k8s.io", ns, undefined, "bollard-ingress-bollard"],
      ["update", "leases.coordination.k8s.io", ns, undefined, "bollard-ingress-bollard"],
    ],
  };
  const everyone: Row[] = [
    ["create", "pods", ns],
    ["create", "pods", "default"],
    ["create", "pods", "default", "exec"],
    ["create", "pods", "default", "ephemeralcontainers"],
    ["create", "deployments.apps", ns],
    ["create", "daemonsets.apps", ns],
    ["create", "jobs.batch", ns],
    ["create", "serviceaccounts", ns, "token", "bollard-controller"],
    ["escalate", "clusterroles.rbac.authorization.k8s.io", ""],
    ["bind", "clusterroles.rbac.authorization.k8s.io", ""],
    ["create", "rolebindings.rbac.authorization.k8s.io", ns],
    ["update", "clusterroles.rbac.authorization.k8s.io", "", undefined, "bollard-speaker"],
    ["impersonate", "users", ""],
    ["impersonate", "serviceaccounts", ns],
    ["approve", "certificatesigningrequests.certificates.k8s.io", "", "approval"],
    ["delete", "services", "default"],
    ["create", "secrets", ns],
    ["update", "secrets", ns, undefined, "bollard-membership"],
    ["delete", "ipaddresspools.metallb.io", ns],
    ["update", "nodes", ""],
    ["patch", "nodes", "", "status"],
    ["update", "leases.coordination.k8s.io", "kube-system", undefined, "kube-scheduler"],
    ["create", "customresourcedefinitions.apiextensions.k8s.io", ""],
    ["create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", ""],
    // Only with metrics.secure (below).
    ["create", "tokenreviews.authentication.k8s.io", ""],
    ["create", "subjectaccessreviews.authorization.k8s.io", ""],
  ];
  const denied: Record<string, Row[]> = {
    [controller]: [
      ...everyone,
      ["get", "secrets", ns],
      ["get", "secrets", ns, undefined, "bollard-membership"],
      ["list", "secrets", ""],
      ["update", "endpointslices.discovery.k8s.io", "default"],
      ["update", "ipaddresspools.metallb.io", ns],
      ["watch", "ipaddresspools.metallb.io", "default"],
      ["update", "leases.coordination.k8s.io", ns, undefined, "bollard-ingress-bollard"],
      ["patch", "configurationstates.metallb.io", ns, "status", "speaker-node1"],
      ["delete", "configurationstates.metallb.io", ns, undefined, "controller"],
    ],
    [speaker]: [
      ...everyone,
      ["get", "secrets", ns],
      ["list", "secrets", ns],
      ["get", "secrets", ns, undefined, "other"],
      ["list", "secrets", ns, undefined, "bollard-membership"],
      ["get", "secrets", "default", undefined, "bollard-membership"],
      ["list", "secrets", ""],
      ["patch", "services", "default"],
      ["update", "services", "default", "status"],
      ["update", "endpointslices.discovery.k8s.io", "default"],
      ["create", "servicel2statuses.metallb.io", "default"],
      ["update", "servicel2statuses.metallb.io", ns],
      ["create", "configurationstates.metallb.io", "default"],
      ["delete", "configurationstates.metallb.io", ns],
      ["create", "bgppeers.metallb.io", ns],
      ["update", "bgpadvertisements.metallb.io", ns],
      ["patch", "bgppeers.metallb.io", ns, "status"],
      ["delete", "communities.metallb.io", ns],
      ["update", "bfdprofiles.metallb.io", ns],
      ["update", "servicebgpstatuses.metallb.io", ns],
      ["create", "servicebgpstatuses.metallb.io", "default"],
      ["create", "leases.coordination.k8s.io", ns],
    ],
    [ingress]: [
      ...everyone,
      ["patch", "services", "default"],
      ["update", "services", "default", "status"],
      ["patch", "services", ns, "status", "bollard-ingress"],
      ["create", "services", "default"],
      ["create", "endpointslices.discovery.k8s.io", "default"],
      ["update", "endpointslices.discovery.k8s.io", "default"],
      ["delete", "endpointslices.discovery.k8s.io", "default"],
      ["update", "secrets", "default"],
      ["update", "ingresses.networking.k8s.io", "default"],
      ["update", "ingressclasses.networking.k8s.io", ""],
      ["update", "ingresses.networking.k8s.io", "default", "status"],
      ["update", "leases.coordination.k8s.io", ns, undefined, "bollard-controller"],
      ["watch", "ipaddresspools.metallb.io", ns],
    ],
  };
  const checksOf = (table: Record<string, Row[]>): Check[] =>
    Object.entries(table).flatMap(([sa, rows]) =>
      rows.map(([verb, resource, namespace, subresource, name]) => ({ sa, verb, resource, namespace, subresource, name })),
    );

  it("asks only about resources the API server serves (so a typo cannot pass as a denial)", () => {
    const served = new Set(kubectl(["api-resources", "-o", "name"]).trim().split("\n"));
    const unknown = [...checksOf(allowed), ...checksOf(denied)]
      .filter((c) => c.verb !== "impersonate" && !served.has(c.resource))
      .map(describeCheck);
    assert.deepEqual([...new Set(unknown)], []);
  });

  it("lets each component do what it needs (SubjectAccessReview, as kubectl auth can-i)", () => {
    const checks = checksOf(allowed);
    const answers = review(cp, checks);
    const missing = checks.filter((_, i) => !answers[i]?.allowed).map(describeCheck);
    assert.deepEqual(missing, []);
  });

  it("lets no component do more (SubjectAccessReview, as kubectl auth can-i)", () => {
    const checks = checksOf(denied);
    const answers = review(cp, checks);
    const excess = checks.flatMap((c, i) => (answers[i]?.allowed ? [`${describeCheck(c)}: ${answers[i]?.reason}`] : []));
    assert.deepEqual(excess, []);
  });

  it("with metrics.secure, lets each component create TokenReviews and SubjectAccessReviews, and nothing more", () => {
    const out = helmOn(["upgrade", "bollard", chartDir, "--namespace", ns, "--reuse-values", "--set", "metrics.secure=true"]);
    assert.match(out, /STATUS: deployed/);
    try {
      const reviews = [controller, speaker, ingress].flatMap((sa): Check[] => [
        { sa, verb: "create", resource: "tokenreviews.authentication.k8s.io", namespace: "" },
        { sa, verb: "create", resource: "subjectaccessreviews.authorization.k8s.io", namespace: "" },
      ]);
      const missing = reviews.filter((_, i) => !review(cp, reviews)[i]?.allowed).map(describeCheck);
      assert.deepEqual(missing, []);
      const more = [controller, speaker, ingress].flatMap((sa): Check[] => [
        { sa, verb: "get", resource: "tokenreviews.authentication.k8s.io", namespace: "" },
        { sa, verb: "create", resource: "localsubjectaccessreviews.authorization.k8s.io", namespace: ns },
      ]);
      const answers = review(cp, more);
      assert.deepEqual(more.filter((_, i) => answers[i]?.allowed).map(describeCheck), []);
      const args = kubectl(["get", "deployment", "bollard-controller", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].args}"]);
      assert.match(args, /--metrics-secure/);
    } finally {
      helmOn(["upgrade", "bollard", chartDir, "--namespace", ns, "--reuse-values", "--set", "metrics.secure=false"]);
    }
  });

  it("agrees with kubectl auth can-i", () => {
    const can = (sa: string, ...args: string[]) => {
      const result = spawnSync(
        cp.binaries.kubectl,
        ["--kubeconfig", cp.kubeconfigPath, "auth", "can-i", ...args, `--as=system:serviceaccount:${sa}`, `--as-group=system:serviceaccounts`],
        { encoding: "utf8" },
      );
      assert.ok(result.status === 0 || result.status === 1, result.stderr);
      return result.status === 0;
    };
    assert.equal(can(speaker, "get", "secrets/bollard-membership", "-n", ns), true);
    assert.equal(can(speaker, "get", "secrets/other", "-n", ns), false);
    assert.equal(can(speaker, "patch", "services", "-n", "default"), false);
    assert.equal(can(controller, "get", "secrets", "-n", ns), false);
    assert.equal(can(controller, "patch", "services", "--subresource=status", "-n", "default"), true);
    assert.equal(can(ingress, "update", "endpointslices.discovery.k8s.io", "-n", "default"), false);
    assert.equal(can(ingress, "list", "secrets", "--all-namespaces"), true);
    for (const sa of [controller, speaker, ingress]) assert.equal(can(sa, "create", "pods", "-n", ns), false);
  });
});

describe("the static manifest (private control plane)", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    await cp?.stop();
  });

  it("applies with kubectl as its header says", () => {
    const kubectl = kubectlOf(cp);
    const out = kubectl(["apply", "--server-side", "-f", join(root, "deploy/manifests/bollard.yaml")]);
    assert.match(out, /namespace\/metallb-system serverside-applied/);
    assert.match(out, /daemonset.apps\/bollard-speaker serverside-applied/);
    kubectl(["create", "secret", "generic", "bollard-membership", "-n", "metallb-system", `--from-literal=secretkey=${randomBytes(48).toString("base64")}`]);
    const [answer] = review(cp, [{ sa: "metallb-system:bollard-speaker", verb: "get", resource: "secrets", namespace: "metallb-system", name: "bollard-membership" }]);
    assert.equal(answer?.allowed, true);
    assert.equal(kubectl(["get", "deployment", "bollard-controller", "-n", "metallb-system", "-o", "jsonpath={.spec.template.spec.serviceAccountName}"]), "bollard-controller");
  });
});
