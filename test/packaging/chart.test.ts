// The chart offline: lint, the CRD copies and the static manifest kept in sync, and what the rendered objects
// promise about privilege. What the API server makes of them is in chart.k8s.test.ts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { CommandError, chartDir, find, helm, type Manifest, parseManifests, root, rulesOf, run, template } from "./helm.ts";

// Every option switched away from its default, so lint and the privilege checks see every template branch.
const everyOption = [
  "ingress.kind=DaemonSet",
  "ingress.watchNamespace=apps",
  "ingress.defaultSSLCertificate=certs/wildcard",
  "ingress.defaultClass=true",
  "ingress.className=edge",
  "ingress.workers=4",
  "ingress.migration.controllerClass=k8s.io/ingress-nginx",
  "ingress.migration.watchIngressClasses={nginx,nginx-internal}",
  "ingress.migration.watchWithoutClass=true",
  "ingress.migration.configMap=ingress-nginx/ingress-nginx-controller",
  "serviceMonitor.enabled=true",
  "loadBalancerClass=bollard.dev/lb",
  "configNamespace=bollard-config",
  "controller.replicas=2",
  "speaker.garpRefreshSeconds=30",
  "speaker.ignoreExcludeLB=true",
  "speaker.bgpPasswordSecrets={bgp-auth,bgp-auth-2}",
  "logLevel=debug",
  "metrics.secure=true",
  "ingress.service.ipFamilyPolicy=RequireDualStack",
  "ingress.service.ipFamilies={IPv4,IPv6}",
];

type Container = {
  name: string;
  command?: string[];
  args: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    capabilities?: { drop?: string[]; add?: string[] };
  };
};
type PodSpec = {
  hostNetwork?: boolean;
  serviceAccountName: string;
  tolerations?: { key: string; operator: string; effect?: string }[];
  containers: Container[];
};
const podSpec = (workload: Manifest) => (workload.spec as { template: { spec: PodSpec } }).template.spec;
const container = (workload: Manifest) => podSpec(workload).containers[0] as Container;

function firstDifference(have: string, want: string): string {
  const a = have.split("\n");
  const b = want.split("\n");
  const line = a.findIndex((l, i) => l !== b[i]);
  const at = line === -1 ? a.length : line;
  return `line ${at + 1} is ${JSON.stringify(a[at])}, rendering gives ${JSON.stringify(b[at])}`;
}

before(() => {
  helm();
});

describe("chart", () => {
  it("passes helm lint --strict with defaults and with every option set", () => {
    const defaults = run(helm(), ["lint", "--strict", chartDir]);
    assert.match(defaults, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const all = run(helm(), ["lint", "--strict", chartDir, ...everyOption.flatMap((v) => ["--set", v])]);
    assert.match(all, /0 chart\(s\) failed/);
  });

  it("rejects values outside the schema, naming the field", () => {
    assert.throws(
      () => template({ set: ["ingress.kind=StatefulSet"] }),
      (err: unknown) => err instanceof CommandError && /ingress\.kind/.test(err.stderr),
    );
    assert.throws(
      () => template({ set: ["ingress.defaultSSLCertificate=no-namespace"] }),
      (err: unknown) => err instanceof CommandError && /ingress\.defaultSSLCertificate/.test(err.stderr),
    );
  });

  it("names the published images, tagged with appVersion, pinned by digest when one is given", async () => {
    const appVersion = /^appVersion: "?([^"\n]+)"?$/m.exec(await readFile(join(chartDir, "Chart.yaml"), "utf8"))?.[1];
    assert.ok(appVersion);
    const images = (manifests: Manifest[]) => ({
      controller: (container(find(manifests, "Deployment", "bollard-controller")) as Container & { image: string }).image,
      speaker: (container(find(manifests, "DaemonSet", "bollard-speaker")) as Container & { image: string }).image,
    });
    assert.deepEqual(images(parseManifests(template())), {
      controller: `ghcr.io/bollard/bollard:${appVersion}`,
      speaker: `ghcr.io/bollard/bollard-speaker:${appVersion}`,
    });
    const a = `sha256:${"a".repeat(64)}`;
    const b = `sha256:${"b".repeat(64)}`;
    assert.deepEqual(images(parseManifests(template({ set: [`image.digest=${a}`, `speaker.image.digest=${b}`] }))), {
      controller: `ghcr.io/bollard/bollard:${appVersion}@${a}`,
      speaker: `ghcr.io/bollard/bollard-speaker:${appVersion}@${b}`,
    });
    assert.throws(
      () => template({ set: ["speaker.image.digest=latest"] }),
      (err: unknown) => err instanceof CommandError && /speaker\.image\.digest/.test(err.stderr),
    );
  });

  it("ships the same CRDs as deploy/crds", async () => {
    const source = (await readdir(join(root, "deploy/crds"))).filter((f) => f.endsWith(".yaml")).sort();
    const copies = (await readdir(join(chartDir, "crds"))).filter((f) => f.endsWith(".yaml")).sort();
    assert.ok(source.length > 0);
    assert.deepEqual(copies, source, "the chart's crds/ must hold exactly the files of deploy/crds (cp deploy/crds/*.yaml deploy/helm/bollard/crds/)");
    for (const file of source) {
      const want = await readFile(join(root, "deploy/crds", file), "utf8");
      const have = await readFile(join(chartDir, "crds", file), "utf8");
      assert.equal(have, want, `deploy/helm/bollard/crds/${file} drifted from deploy/crds/${file}`);
    }
  });

  it("is what deploy/manifests/bollard.yaml holds", async () => {
    const rendered = run("bash", [join(root, "deploy/manifests/render.sh")]);
    const committed = await readFile(join(root, "deploy/manifests/bollard.yaml"), "utf8");
    assert.ok(committed === rendered, `deploy/manifests/bollard.yaml is stale: ${firstDifference(committed, rendered)}; regenerate: bash deploy/manifests/render.sh > deploy/manifests/bollard.yaml`);
    const manifests = parseManifests(committed);
    assert.equal(manifests.filter((m) => m.kind === "CustomResourceDefinition").length, (await readdir(join(root, "deploy/crds"))).length);
    assert.equal(manifests.filter((m) => m.kind === "Secret").length, 0, "no membership key may be committed");
    assert.equal(find(manifests, "Namespace", "metallb-system").metadata.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
  });

  it("runs the speaker on every node's network with NET_RAW only", () => {
    const manifests = parseManifests(template());
    const speaker = find(manifests, "DaemonSet", "bollard-speaker");
    const spec = podSpec(speaker);
    assert.equal(spec.hostNetwork, true);
    assert.ok(spec.tolerations?.some((t) => t.key === "node-role.kubernetes.io/control-plane" && t.operator === "Exists"));
    const c = container(speaker);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"], add: ["NET_RAW"] });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.env?.find((e) => e.name === "NODE_NAME")?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
    assert.ok(c.args.includes("--node-name=$(NODE_NAME)"));
    assert.ok(c.args.includes("--memberlist-secret=metallb-system/bollard-membership"));
    const secret = find(manifests, "Secret", "bollard-membership") as Manifest & { data: { secretkey: string } };
    assert.ok(Buffer.from(secret.data.secretkey, "base64").length >= 32, "the generated key is long");
  });

  it("runs the controller and the ingress as non-root with no capability", () => {
    const manifests = parseManifests(template());
    for (const workload of [find(manifests, "Deployment", "bollard-controller"), find(manifests, "Deployment", "bollard-ingress")]) {
      const c = container(workload);
      assert.equal(podSpec(workload).hostNetwork, undefined, workload.metadata.name);
      assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] }, workload.metadata.name);
      assert.equal(c.securityContext.runAsNonRoot, true, workload.metadata.name);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, workload.metadata.name);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, workload.metadata.name);
    }
  });

  it("gives the controller and the speaker their V8 flags on node's command line, not in NODE_OPTIONS, and the images a compile cache for them", () => {
    // The speaker image's node has a file capability: in that secure-execution mode Node ignores NODE_OPTIONS.
    const manifests = parseManifests(template());
    const containerfile = readFileSync(join(root, "deploy/container/Containerfile"), "utf8");
    // V8 keys the compile cache by the flags that change code: the images' cache is filled with the chart's.
    const cachedFlags = /^ARG LOW_MEMORY_NODE_FLAGS="([^"]*)"$/m.exec(containerfile)?.[1]?.split(" ") ?? [];
    assert.ok(cachedFlags.includes("--memory-saver-mode"), "the Containerfile's LOW_MEMORY_NODE_FLAGS");
    for (const workload of [find(manifests, "Deployment", "bollard-controller"), find(manifests, "DaemonSet", "bollard-speaker")]) {
      const c = container(workload);
      assert.deepEqual(c.command, ["/usr/local/bin/node", ...cachedFlags, "/app/packages/cli/bin/bollard.js"], workload.metadata.name);
      assert.deepEqual((c.env ?? []).filter((e) => e.name === "NODE_OPTIONS"), [], workload.metadata.name);
    }
    // The ingress keeps the image's entrypoint: its proxy wants the large young generation.
    assert.equal(container(find(manifests, "Deployment", "bollard-ingress")).command, undefined);
    // The command is the images' entrypoint with the flags in between.
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(containerfile)?.[1] ?? "[]") as string[];
    assert.deepEqual(entrypoint, ["/usr/local/bin/node", "/app/packages/cli/bin/bollard.js"]);
  });

  it("turns values into objects and flags", () => {
    const manifests = parseManifests(template({ set: everyOption }));
    const controller = find(manifests, "Deployment", "bollard-controller");
    assert.equal((controller.spec as { replicas: number }).replicas, 2);
    assert.ok(container(controller).args.includes("--lb-class=bollard.dev/lb"));
    assert.ok(container(controller).args.includes("--config-namespace=bollard-config"));
    const speakerArgs = container(find(manifests, "DaemonSet", "bollard-speaker")).args;
    for (const flag of ["--load-balancer-class=bollard.dev/lb", "--config-namespace=bollard-config", "--garp-refresh=30s", "--ignore-exclude-lb"]) {
      assert.ok(speakerArgs.includes(flag), `${flag} in ${speakerArgs.join(" ")}`);
    }
    const configRole = find(manifests, "Role", "bollard-controller") as Manifest & { rules: { resources: string[]; resourceNames?: string[] }[] };
    assert.equal(configRole.metadata.namespace, "bollard-config");
    // `bollard controller` names its Lease per class: bollard-controller-<first 12 hex of sha256(class)>.
    const leaseRule = configRole.rules.find((r) => r.resources.includes("leases") && r.resourceNames !== undefined);
    assert.deepEqual(leaseRule?.resourceNames, [`bollard-controller-${createHash("sha256").update("bollard.dev/lb").digest("hex").slice(0, 12)}`]);

    const ingress = find(manifests, "DaemonSet", "bollard-ingress");
    const args = container(ingress).args;
    for (const flag of [
      "--ingress-class=edge",
      "--watch-namespace=apps",
      "--workers=4",
      "--publish-service=metallb-system/bollard-ingress",
      "--controller-class=k8s.io/ingress-nginx",
      "--watch-ingress-class=nginx",
      "--watch-ingress-class=nginx-internal",
      "--watch-ingress-without-class",
      "--configmap=ingress-nginx/ingress-nginx-controller",
    ]) {
      assert.ok(args.includes(flag), `${flag} in ${args.join(" ")}`);
    }
    // the ingress-nginx ConfigMap outside the watch namespace: that one object, read-only
    const cmRole = find(manifests, "Role", "bollard-ingress-configmap") as Manifest & { rules: { resources: string[]; resourceNames?: string[]; verbs: string[] }[] };
    assert.equal(cmRole.metadata.namespace, "ingress-nginx");
    assert.deepEqual(cmRole.rules, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["ingress-nginx-controller"], verbs: ["list", "watch"] }]);
    const ingressClass = find(manifests, "IngressClass", "edge");
    assert.equal((ingressClass.spec as { controller: string }).controller, "bollard.dev/ingress-controller");
    assert.equal(ingressClass.metadata.annotations?.["ingressclass.kubernetes.io/is-default-class"], "true");
    const service = find(manifests, "Service", "bollard-ingress").spec as { type: string; loadBalancerClass?: string; ipFamilyPolicy?: string; ipFamilies?: string[] };
    assert.equal(service.ipFamilyPolicy, "RequireDualStack");
    assert.deepEqual(service.ipFamilies, ["IPv4", "IPv6"]);
    assert.equal(service.type, "LoadBalancer");
    assert.equal(service.loadBalancerClass, "bollard.dev/lb", "the ingress's own Service must be handled by this controller");
    assert.equal(manifests.filter((m) => m.kind === "ServiceMonitor").length, 1);

    // metrics.secure: HTTPS probes, --metrics-secure, and only the two review verbs added to each ServiceAccount.
    const reviewRules = (all: Manifest[], sa: string) =>
      rulesOf(all, sa).filter(({ rule }) => (rule.resources ?? []).some((r) => r === "tokenreviews" || r === "subjectaccessreviews"));
    for (const workload of [controller, find(manifests, "DaemonSet", "bollard-speaker"), ingress]) {
      const c = container(workload) as Container & { livenessProbe: { httpGet: { scheme?: string } }; readinessProbe: { httpGet: { scheme?: string } } };
      assert.ok(c.args.includes("--metrics-secure"), workload.metadata.name);
      assert.equal(c.livenessProbe.httpGet.scheme, "HTTPS");
      assert.equal(c.readinessProbe.httpGet.scheme, "HTTPS");
      const sa = podSpec(workload).serviceAccountName;
      assert.deepEqual(
        reviewRules(manifests, sa).map(({ scope, rule }) => [scope, rule.apiGroups, rule.resources, rule.verbs]),
        [
          ["cluster", ["authentication.k8s.io"], ["tokenreviews"], ["create"]],
          ["cluster", ["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]],
        ],
        sa,
      );
    }
    const reader = find(manifests, "ClusterRole", "bollard-metrics-reader") as Manifest & { rules: unknown[] };
    assert.deepEqual(reader.rules, [{ nonResourceURLs: ["/metrics"], verbs: ["get"] }]);
    const monitor = find(manifests, "ServiceMonitor", "bollard").spec as { endpoints: { scheme?: string; bearerTokenFile?: string }[] };
    assert.equal(monitor.endpoints[0]?.scheme, "https");
    assert.ok(monitor.endpoints[0]?.bearerTokenFile);

    const defaults = parseManifests(template());
    for (const sa of ["bollard-controller", "bollard-speaker", "bollard-ingress"]) assert.deepEqual(reviewRules(defaults, sa), [], sa);
    assert.ok(!container(find(defaults, "Deployment", "bollard-controller")).args.includes("--metrics-secure"));
    assert.equal(find(defaults, "Deployment", "bollard-ingress").kind, "Deployment");
    assert.equal(find(defaults, "IngressClass", "bollard").metadata.annotations, undefined);
    assert.equal(defaults.filter((m) => m.kind === "ServiceMonitor").length, 0);
  });

  for (const [label, set] of [
    ["defaults", []],
    ["every option", everyOption],
  ] as const) {
    it(`grants no wildcard, no escalation and no pod creation (${label})`, () => {
      const manifests = parseManifests(template({ set: [...set] }));
      for (const sa of ["bollard-controller", "bollard-speaker", "bollard-ingress"]) {
        const rules = rulesOf(manifests, sa);
        assert.ok(rules.length > 0, sa);
        for (const { scope, rule } of rules) {
          const where = `${sa} (${scope}): ${JSON.stringify(rule)}`;
          assert.ok(![...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs].includes("*"), `wildcard in ${where}`);
          for (const verb of ["escalate", "bind", "impersonate", "deletecollection"]) assert.ok(!rule.verbs.includes(verb), `${verb} in ${where}`);
          assert.ok(!(rule.resources ?? []).some((r) => r.startsWith("pods") || r.startsWith("serviceaccounts")), where);
          assert.ok(!(rule.resources ?? []).some((r) => /roles|rolebindings/.test(r)), where);
        }
      }
      const secretRules = (sa: string) => rulesOf(manifests, sa).filter(({ rule }) => rule.resources?.includes("secrets"));
      assert.deepEqual(secretRules("bollard-controller"), [], "the controller reads no Secret");
      // The membership key, and the BGP password Secrets the values list (in the config namespace), by name.
      const speakerSecrets = secretRules("bollard-speaker");
      const bgpPasswords = set.length === 0 ? [] : [{ scope: "namespace bollard-config", names: ["bgp-auth", "bgp-auth-2"] }];
      assert.deepEqual(
        speakerSecrets.map(({ scope, rule }) => ({ names: rule.resourceNames, verbs: rule.verbs, scope })).sort((a, b) => a.scope.localeCompare(b.scope)),
        [...bgpPasswords.map(({ scope, names }) => ({ names, verbs: ["get"], scope })), { names: ["bollard-membership"], verbs: ["get"], scope: "namespace metallb-system" }].sort((a, b) => a.scope.localeCompare(b.scope)),
      );
      for (const sa of ["bollard-controller", "bollard-speaker", "bollard-ingress"]) {
        for (const { scope, rule } of rulesOf(manifests, sa)) {
          if (!rule.verbs.some((v) => ["create", "update", "patch", "delete"].includes(v))) continue;
          assert.ok(!(rule.resources ?? []).includes("secrets"), `${sa} writes Secrets (${scope})`);
          assert.ok(!(rule.resources ?? []).includes("endpointslices"), `${sa} writes EndpointSlices (${scope})`);
          if (sa !== "bollard-controller") assert.ok(!(rule.resources ?? []).some((r) => r.startsWith("services")), `${sa} writes Services (${scope})`);
        }
      }
    });
  }

  it("narrows the ingress to its watch namespace", () => {
    const manifests = parseManifests(template({ set: ["ingress.watchNamespace=apps"] }));
    const scopes = rulesOf(manifests, "bollard-ingress")
      .filter(({ rule }) => rule.resources?.includes("secrets") || rule.resources?.includes("ingresses"))
      .map(({ scope }) => scope);
    assert.deepEqual([...new Set(scopes)], ["namespace apps"]);
  });
});
