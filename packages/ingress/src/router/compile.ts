import { type GlobalSettings, DEFAULT_GLOBALS } from "../annotations/globals.ts";
import { POLICY_READERS } from "../annotations/index.ts";
import type { RoutePolicy } from "../annotations/policy.ts";
import { type AnnotationFinding, isSecurityAnnotation, NGINX_ANNOTATION_PREFIX, readPolicy } from "../annotations/read.ts";
import { actsOnCanary } from "../annotations/canary.ts";
import { BOLLARD_SSL_REDIRECT, parseServerAliases } from "../annotations/redirect.ts";
import { usesRegex } from "../annotations/rewrite.ts";
import { CONTROLLER_NAME, type ClassSelection, DEFAULT_CLASS_NAME, isOurIngress } from "../model/ingress-class.ts";
import { compareByAge, type ConfigMap, type EndpointSlice, type HTTPIngressPath, type Ingress, type IngressBackend, type ObjectRef, refKey, refOf, type Secret, type Service, type Snapshot } from "../model/objects.ts";
import { certificateCovers, readKeyPair } from "../tls/key-pair.ts";
import { type BackendIndex, type BackendProblem, backendInputs, indexBackends, resolveBackend, sameObjects } from "./backends.ts";
import { isValidRuleHost, normalizePath, pathSegments } from "./paths.ts";
import { regexOf, regexPathError } from "./regex.ts";
import type { Backend, Canary, Diagnostic, DiagnosticReason, HostRoutes, KeyPair, Passthrough, RegexRoute, Route, RoutePathType, RouteTable } from "./table.ts";

export const SSL_REDIRECT_ANNOTATION = BOLLARD_SSL_REDIRECT;

export interface CompileOptions {
  controllerName?: string;
  ingressClass?: string;
  /** `--default-ssl-certificate`: a `kubernetes.io/tls` Secret served when SNI matches no Ingress TLS host */
  defaultCertificate?: ObjectRef | null;
  /** IngressClass names served whatever their controller (`--watch-ingress-class`) */
  watchIngressClasses?: readonly string[];
  /** serve Ingresses without a class (`--watch-ingress-without-class`) */
  watchWithoutClass?: boolean;
  /** the prefix of the annotations read (`--annotations-prefix`, default nginx.ingress.kubernetes.io) */
  annotationsPrefix?: string;
  /** cluster-wide defaults (`--configmap`) */
  globals?: GlobalSettings;
}

interface MutableNode {
  route: Route | null;
  children: Map<string, MutableNode>;
}

interface MutableHost {
  exact: Map<string, Route>;
  prefix: MutableNode;
  regex: RegexRoute[];
}

/**
 * Ingresses + IngressClasses + Services + EndpointSlices + TLS Secrets → one immutable route table and the
 * problems of each Ingress. Pure: same snapshot, same table. Where two Ingresses claim the same route the
 * oldest (then namespace/name) keeps it; a broken Ingress only loses its own broken parts.
 */
export function compileRoutes(snapshot: Snapshot, options: CompileOptions = {}): RouteTable {
  const selection: ClassSelection = {
    controllerName: options.controllerName ?? CONTROLLER_NAME,
    className: options.ingressClass ?? DEFAULT_CLASS_NAME,
    classNames: options.watchIngressClasses ?? [],
    withoutClass: options.watchWithoutClass ?? false,
  };
  const ours = snapshot.ingresses.filter((ing) => isOurIngress(ing, snapshot.ingressClasses, selection)).sort(compareByAge);
  const diagnostics: Diagnostic[] = [];
  const report = (ingress: Ingress, severity: Diagnostic["severity"], reason: DiagnosticReason, field: string, message: string) => {
    diagnostics.push({ ingress: refOf(ingress.metadata), severity, reason, field, message });
  };

  const secrets = new Map<string, Secret>();
  for (const s of snapshot.secrets) secrets.set(refKey(refOf(s.metadata)), s);
  const configMaps = new Map<string, ConfigMap>();
  for (const c of snapshot.configMaps ?? []) configMaps.set(refKey(refOf(c.metadata)), c);
  const policyInputs: PolicyInputs = { secrets, configMaps, globals: options.globals ?? DEFAULT_GLOBALS, prefix: options.annotationsPrefix ?? NGINX_ANNOTATION_PREFIX };
  const annotations = new Map<string, readonly AnnotationFinding[]>();
  const keyPairs = new Map<string, KeyPair | { error: string }>();
  const keyPairOf = (ref: ObjectRef): KeyPair | { error: string } | undefined => {
    const key = refKey(ref);
    const secret = secrets.get(key);
    if (secret === undefined) return undefined;
    let pair = keyPairs.get(key);
    if (pair === undefined) {
      pair = readKeyPair(secret);
      keyPairs.set(key, pair);
    }
    return pair;
  };

  // TLS first: which hosts have TLS decides the HTTPS redirects of the routes below.
  const tlsHosts = new Set<string>();
  const certExact = new Map<string, KeyPair>();
  const certWildcard = new Map<string, KeyPair>();
  const certOwner = new Map<string, Ingress>();
  // per TLS host, the Ingresses whose spec.tls names it (a passthrough host's other Ingresses are warned)
  const tlsHostIngresses = new Map<string, Ingress[]>();
  for (const ing of ours) {
    const namespace = refOf(ing.metadata).namespace;
    (ing.spec?.tls ?? []).forEach((tls, i) => {
      const field = `spec.tls[${i}]`;
      // Without hosts, a TLS entry covers the hosts of the Ingress's own rules.
      const hosts = (tls.hosts?.length ? tls.hosts : ruleHosts(ing)).map((h) => h.toLowerCase());
      for (const h of hosts) {
        tlsHosts.add(h);
        const named = tlsHostIngresses.get(h) ?? [];
        if (!named.includes(ing)) named.push(ing);
        tlsHostIngresses.set(h, named);
      }
      if (tls.secretName === undefined || tls.secretName === "") return;
      const secretRef = { namespace, name: tls.secretName };
      const pair = keyPairOf(secretRef);
      if (pair === undefined) {
        report(ing, "error", "SecretNotFound", `${field}.secretName`, `Secret ${refKey(secretRef)} not found; the default certificate is served for ${hosts.join(", ")}`);
        return;
      }
      if ("error" in pair) {
        report(ing, "error", "InvalidCertificate", `${field}.secretName`, `${pair.error}; the default certificate is served for ${hosts.join(", ")}`);
        return;
      }
      for (const host of hosts) {
        if (!isValidRuleHost(host)) {
          report(ing, "error", "InvalidHost", `${field}.hosts`, `TLS host "${host}" is not a DNS name`);
          continue;
        }
        const wildcard = host.startsWith("*.");
        const map = wildcard ? certWildcard : certExact;
        const key = wildcard ? host.slice(2) : host;
        const held = map.get(key);
        if (held !== undefined && held.id !== pair.id) {
          const owner = certOwner.get(host);
          report(ing, "warning", "TLSConflict", `${field}.secretName`, `the certificate for ${host} is held by Ingress ${owner ? refKey(refOf(owner.metadata)) : "?"} (Secret ${refKey(held.secret)})`);
          continue;
        }
        if (held === undefined) {
          map.set(key, pair);
          certOwner.set(host, ing);
        }
        // Served anyway, so the client names the problem (a wrong certificate) instead of meeting ours.
        if (!certificateCovers(pair.dnsNames, host)) {
          const names = pair.dnsNames.length > 0 ? pair.dnsNames.join(", ") : "no DNS name";
          report(ing, "warning", "CertificateHostMismatch", tls.hosts?.length ? `${field}.hosts` : `${field}.secretName`, `the certificate in Secret ${refKey(pair.secret)} is not valid for ${host} (it names ${names}); it is served for ${host} anyway`);
        }
      }
    });
  }

  // use-regex / rewrite-target on any Ingress of a host makes every path of that host, in every Ingress, a regex
  // (ingress-nginx writes the whole server's locations with `~*`). Keyed by host, "" for host-less rules.
  const regexHosts = new Set<string>();
  for (const ing of ours) {
    if (!usesRegex(ingressPolicy(ing, refOf(ing.metadata).namespace, policyInputs).policy.rewrite)) continue;
    for (const rule of parseIngress(ing).rules) if (!rule.invalidHost) regexHosts.add(rule.host ?? "");
  }

  const index = indexBackends(snapshot);
  const exactHosts = new Map<string, MutableHost>();
  const wildcardHosts = new Map<string, MutableHost>();
  let anyHost: MutableHost | null = null;
  const claimed = new Map<string, Route>();
  let defaultRoute: Route | null = null;
  const hostDefaults = new Map<MutableHost, Route>();
  // the oldest Ingress naming each exact host, and those asking for its www. twin's redirect
  const hostOwners = new Map<string, ObjectRef>();
  const wwwAsked = new Map<string, Ingress>();
  const hostRoutesOf = (host: string): MutableHost => {
    const wildcard = host.startsWith("*.");
    const map = wildcard ? wildcardHosts : exactHosts;
    const key = wildcard ? host.slice(2) : host;
    let rules = map.get(key);
    if (rules === undefined) {
      rules = newHost();
      map.set(key, rules);
    }
    return rules;
  };

  // Canary Ingresses claim nothing: their paths' backends wait here, by claim key, for the main Ingress's route
  // of the same host and path (the oldest canary of a path keeps it; ingress-nginx serves one per route).
  const canaries = new Map<string, { canary: Canary; ingress: Ingress; field: string; where: string; used: boolean }>();
  for (const ing of ours) {
    const parsed = parseIngress(ing);
    const { policy } = ingressPolicy(ing, parsed.ref.namespace, policyInputs);
    if (policy.canary === null) continue;
    const rule = policy.canary;
    if (ing.spec?.defaultBackend !== undefined) {
      report(ing, "warning", "CanaryWithoutMain", "spec.defaultBackend", "the defaultBackend of a canary Ingress is not served: only the paths of its rules join the main Ingress's routes");
    }
    for (const parsedRule of parsed.rules) {
      for (const entry of parsedRule.paths) {
        if ("problem" in entry) continue; // reported below, with the Ingress's other problems
        const where = `host ${parsedRule.host ?? "*"} path ${entry.path} (${entry.pathType})`;
        const held = canaries.get(entry.claimKey);
        if (held !== undefined) {
          report(ing, "warning", "CanaryConflict", entry.field, `${where} already has a canary, Ingress ${refKey(held.canary.ingress)}; one canary per route is served`);
          continue;
        }
        const backend = serviceUpstream(ing, policy, pathBackend(entry, parsed.ref.namespace, index, ing, report), index, policyInputs.prefix, report);
        let canary = entry.canary;
        if (canary === undefined || canary.backend !== backend || canary.rule !== rule || canary.balance !== policy.balance) {
          canary = Object.freeze({ ingress: parsed.ref, backend, rule, balance: policy.balance });
          entry.canary = canary;
        }
        canaries.set(entry.claimKey, { canary, ingress: ing, field: entry.field, where, used: false });
      }
    }
  }

  for (const ing of ours) {
    const parsed = parseIngress(ing);
    const ref = parsed.ref;
    const { policy, findings } = ingressPolicy(ing, ref.namespace, policyInputs);
    annotations.set(refKey(ref), findings);
    for (const f of findings) {
      if (f.verdict !== "invalid" && f.verdict !== "unsupported") continue;
      const consequence = f.refuses ? "; the Ingress's routes answer 503 until this is fixed (a security annotation is never ignored)" : "";
      const what = f.verdict === "invalid" ? `"${f.value}" is not valid: ${f.message}` : `is not supported: ${f.message}`;
      report(ing, "warning", f.verdict === "invalid" ? "InvalidAnnotation" : "UnsupportedAnnotation", `metadata.annotations['${f.key}']`, `${f.key} ${what}${consequence}`);
    }
    if (policy.sslPassthrough && policy.canary === null) {
      // Unread TLS cannot be authenticated: auth makes the host's passthrough connections closed (never relayed
      // unprotected, unlike ingress-nginx); source ranges are checked on the connection's peer address.
      for (const f of findings) {
        if (!isSecurityAnnotation(f.name) || f.refuses) continue;
        const what = f.name.endsWith("-source-range")
          ? "is checked on the TLS connection's peer address (no X-Forwarded-For can be read from an unread stream): put no proxy in front, or list its address"
          : "cannot be checked on a TLS stream that is passed through unread: the data plane closes those connections instead of relaying them unprotected";
        report(ing, "warning", "PassthroughUnprotected", `metadata.annotations['${f.key}']`, `${f.key} ${what}; for plain-HTTP requests it applies as usual`);
      }
    }
    if (policy.canary !== null) {
      // its path problems are its own; its paths were attached above
      for (const rule of parsed.rules) for (const entry of rule.paths) if ("problem" in entry) report(ing, "error", entry.problem.reason, entry.problem.field, entry.problem.message);
      continue;
    }
    const sslRedirectFor = (host: string | null) => (host !== null && tlsHosts.has(host) && policy.redirect.sslRedirect) || policy.redirect.forceSslRedirect;
    const backendOf = (spec: NonNullable<Ingress["spec"]>["defaultBackend"], field: string) => {
      const { backend, problem } = resolveBackend(spec ?? {}, ref.namespace, field, index);
      if (problem !== null) report(ing, "error", problem.reason, problem.field, problem.message);
      return serviceUpstream(ing, policy, backend, index, policyInputs.prefix, report);
    };
    const errorBackend = errorBackendOf(ing, policy.errors?.defaultBackend ?? null, ref.namespace, index, report);

    // An Ingress's defaultBackend serves what its own hosts' rules do not match (ingress-nginx's scoping);
    // the oldest one is also the cluster-wide default, for hosts no Ingress names and host-less rules.
    const defaultSpec = ing.spec?.defaultBackend;
    const ownHosts = ruleHosts(ing).length > 0;
    // Resolved (and its problems reported) only where it serves: as the cluster-wide default, or for its own hosts.
    const ownDefault: Backend | null =
      defaultSpec !== undefined && (defaultRoute === null || ownHosts) ? backendOf(defaultSpec, "spec.defaultBackend") : null;
    if (defaultSpec !== undefined) {
      if (defaultRoute !== null) {
        if (!ownHosts) report(ing, "warning", "DefaultBackendConflict", "spec.defaultBackend", `the default backend is held by Ingress ${refKey(defaultRoute.ingress)}`);
      } else if (ownDefault !== null) {
        defaultRoute = Object.freeze({ ingress: ref, host: null, path: null, pathType: null, backend: ownDefault, sslRedirect: false, regex: false, policy, canaries: NO_CANARIES, errorBackend });
      }
    }

    parsed.rules.forEach((parsedRule, r) => {
      const { rawHost, host } = parsedRule;
      if (parsedRule.invalidHost) {
        report(ing, "error", "InvalidHost", `spec.rules[${r}].host`, `host "${rawHost}" is not a DNS name with at most one leading "*" label`);
        return;
      }
      // A named host is claimed even by a rule without paths (no `http`): its requests never fall to
      // wildcard or host-less rules, and what its paths do not match goes to the oldest defaultBackend
      // among the Ingresses that name it.
      if (host !== null) {
        const rules = hostRoutesOf(host);
        if (!host.startsWith("*.")) {
          if (!hostOwners.has(host)) hostOwners.set(host, ref);
          if (policy.redirect.fromToWww && !wwwAsked.has(host)) wwwAsked.set(host, ing);
        }
        const held = hostDefaults.get(rules);
        if (ownDefault !== null && held === undefined) {
          hostDefaults.set(rules, Object.freeze({ ingress: ref, host: rawHost, path: null, pathType: null, backend: ownDefault, sslRedirect: sslRedirectFor(host), regex: false, policy, canaries: NO_CANARIES, errorBackend }));
        } else if (ownDefault !== null && held !== undefined && held.ingress !== ref) {
          report(ing, "warning", "DefaultBackendConflict", "spec.defaultBackend", `the default backend for host ${rawHost} is held by Ingress ${refKey(held.ingress)}`);
        }
      }
      for (const entry of parsedRule.paths) {
        if ("problem" in entry) {
          report(ing, "error", entry.problem.reason, entry.problem.field, entry.problem.message);
          continue;
        }
        const regex = regexHosts.has(host ?? "");
        if (regex) {
          const error = regexPathError(entry.path);
          if (error !== null) {
            report(ing, "error", "InvalidPath", `${entry.field}.path`, `path "${entry.path}" is matched as a regex on host ${host ?? "*"} (use-regex or rewrite-target), and ${error}`);
            continue;
          }
        }
        // Regex paths are claimed as written: two spellings are two regexes.
        const claimKey = regex ? `${host ?? ""} regex ${entry.path}` : entry.claimKey;
        const holder = claimed.get(claimKey);
        if (holder !== undefined) {
          report(ing, "warning", "RouteConflict", entry.field, `host ${host ?? "*"} path ${entry.path} (${entry.pathType}) is held by Ingress ${refKey(holder.ingress)}`);
          continue;
        }
        const backend = serviceUpstream(ing, policy, pathBackend(entry, ref.namespace, index, ing, report), index, policyInputs.prefix, report);
        const sslRedirect = sslRedirectFor(host);
        const waiting = canaries.get(entry.claimKey);
        if (waiting !== undefined) waiting.used = true;
        const routeCanaries = waiting === undefined ? NO_CANARIES : canaryList(waiting.canary);
        // The same Route object as the last compile while nothing it holds changed (tables then differ only where
        // the cluster did, which is what the data plane's swap compares).
        let route = entry.route;
        if (route === undefined || route.backend !== backend || route.sslRedirect !== sslRedirect || route.regex !== regex || route.policy !== policy || route.canaries !== routeCanaries || route.errorBackend !== errorBackend) {
          route = Object.freeze({ ingress: ref, host: rawHost === "" ? null : rawHost, path: entry.path, pathType: entry.pathType, backend, sslRedirect, regex, policy, canaries: routeCanaries, errorBackend });
          entry.route = route;
        }
        claimed.set(claimKey, route);
        let rules: MutableHost;
        if (host === null) {
          anyHost ??= newHost();
          rules = anyHost;
        } else rules = hostRoutesOf(host);
        if (regex) rules.regex.push(regexRouteOf(route));
        else if (entry.exact) rules.exact.set(entry.normalized, route);
        else insertPrefix(rules.prefix, entry.segments, route);
      }
    });
  }

  for (const { ingress, field, where, used } of canaries.values()) {
    if (!used) report(ingress, "warning", "CanaryWithoutMain", field, `no Ingress without canary serves ${where}: this canary serves nothing until one does`);
  }

  // A host's default sits at the root of its Prefix trie, below every rule: a `/` Prefix rule beats it.
  for (const [rules, route] of hostDefaults) rules.prefix.route ??= route;
  const allHosts = [...exactHosts.values(), ...wildcardHosts.values(), ...(anyHost === null ? [] : [anyHost])];
  for (const rules of allHosts) rules.regex.sort((a, b) => compareRegexRoutes(a.route, b.route));

  const passthrough = passthroughTable(ours, policyInputs, exactHosts, wildcardHosts, tlsHostIngresses, report);

  // server-alias: the oldest Ingress naming an alias has it; a host some Ingress names is never taken over.
  const aliases = new Map<string, string>();
  const aliasOwners = new Map<string, ObjectRef>();
  const aliasKey = `${policyInputs.prefix}/server-alias`;
  for (const ing of ours) {
    const value = ing.metadata.annotations?.[aliasKey];
    if (value === undefined) continue;
    const ref = refOf(ing.metadata);
    const target = parseIngress(ing).rules.find((r) => r.host !== null && !r.invalidHost && !r.host.startsWith("*."))?.host ?? undefined;
    const field = `metadata.annotations['${aliasKey}']`;
    if (target === undefined) {
      report(ing, "warning", "InvalidAnnotation", field, `${aliasKey} needs a rule with a host (not a wildcard) to alias; it is not served`);
      continue;
    }
    for (const alias of parseServerAliases(value).hosts) {
      if (alias === target) continue;
      const owner = hostOwners.get(alias) ?? aliasOwners.get(alias);
      if (owner !== undefined) {
        report(ing, "warning", "RouteConflict", field, `alias ${alias} is ${hostOwners.has(alias) ? "a host" : "an alias"} of Ingress ${refKey(owner)}; it is not taken over`);
        continue;
      }
      aliases.set(alias, target);
      aliasOwners.set(alias, ref);
    }
  }

  // from-to-www-redirect: the twin of a host redirects to it, unless some Ingress names the twin (or aliases it).
  const wwwRedirects = new Map<string, string>();
  for (const [host, ing] of wwwAsked) {
    const twin = host.startsWith("www.") ? host.slice(4) : `www.${host}`;
    if (!isValidRuleHost(twin) || twin.startsWith("*")) continue;
    const owner = hostOwners.get(twin) ?? aliasOwners.get(twin);
    if (owner !== undefined) {
      report(ing, "warning", "RouteConflict", `metadata.annotations['${policyInputs.prefix}/from-to-www-redirect']`, `${twin} is ${hostOwners.has(twin) ? "a host" : "an alias"} of Ingress ${refKey(owner)}; its requests are served there, not redirected to ${host}`);
      continue;
    }
    wwwRedirects.set(twin, host);
  }

  let fallback: KeyPair | null = null;
  let defaultCertificateError: string | null = null;
  if (options.defaultCertificate) {
    const pair = keyPairOf(options.defaultCertificate);
    if (pair === undefined) defaultCertificateError = `Secret ${refKey(options.defaultCertificate)} not found`;
    else if ("error" in pair) defaultCertificateError = pair.error;
    else fallback = pair;
  }

  return Object.freeze({
    exactHosts: exactHosts as ReadonlyMap<string, HostRoutes>,
    wildcardHosts: wildcardHosts as ReadonlyMap<string, HostRoutes>,
    anyHost: anyHost as HostRoutes | null,
    aliases,
    wwwRedirects,
    defaultRoute,
    passthrough,
    certificates: Object.freeze({ exactHosts: certExact, wildcardHosts: certWildcard, fallback }),
    ingresses: ours.map((ing) => refOf(ing.metadata)),
    diagnostics,
    annotations,
    defaultCertificateError,
  });
}

interface PolicyInputs {
  secrets: ReadonlyMap<string, Secret>;
  configMaps: ReadonlyMap<string, ConfigMap>;
  globals: GlobalSettings;
  prefix: string;
}

interface KnownPolicy {
  prefix: string;
  globals: GlobalSettings;
  /** the Secrets and ConfigMaps the readers looked up, as they were (undefined: absent) */
  lookups: { secret: boolean; key: string; object: Secret | ConfigMap | undefined }[];
  policy: RoutePolicy;
  findings: readonly AnnotationFinding[];
}

/** Per Ingress object: its policy, read again only when an object it looked up (or the globals) changed. */
const knownPolicies = new WeakMap<Ingress, KnownPolicy>();

function ingressPolicy(ing: Ingress, namespace: string, inputs: PolicyInputs): KnownPolicy {
  const known = knownPolicies.get(ing);
  if (
    known !== undefined &&
    known.prefix === inputs.prefix &&
    known.globals === inputs.globals &&
    known.lookups.every((l) => (l.secret ? inputs.secrets : inputs.configMaps).get(l.key) === l.object)
  ) {
    return known;
  }
  const lookups: KnownPolicy["lookups"] = [];
  // `name` in the Ingress's namespace, or `namespace/name`
  const keyOf = (ref: string) => (ref.includes("/") ? ref : `${namespace}/${ref}`);
  const rules = ing.spec?.rules ?? [];
  const fixedHosts = ing.spec?.defaultBackend === undefined && rules.length > 0 && rules.every((r) => r.host !== undefined && r.host !== "" && !r.host.includes("*"));
  const context = {
    namespace,
    globals: inputs.globals,
    fixedHosts,
    secret: (ref: string) => {
      const key = keyOf(ref);
      const object = inputs.secrets.get(key);
      lookups.push({ secret: true, key, object });
      return object;
    },
    configMap: (ref: string) => {
      const key = keyOf(ref);
      const object = inputs.configMaps.get(key);
      lookups.push({ secret: false, key, object });
      return object;
    },
  };
  let annotations = ing.metadata.annotations;
  // Bollard's older spelling stands in for ssl-redirect when the ingress-nginx one is absent.
  const legacy = annotations?.[BOLLARD_SSL_REDIRECT];
  const sslKey = `${inputs.prefix}/ssl-redirect`;
  if (legacy !== undefined && annotations?.[sslKey] === undefined) annotations = { ...annotations, [sslKey]: legacy };
  const read = readPolicy(annotations, context, POLICY_READERS, inputs.prefix);
  const policy = read.policy;
  let findings = read.findings;
  if (policy.canary !== null) {
    // ingress-nginx takes everything but the canary rule and the choice of endpoint from the main Ingress
    findings = findings.map((f) =>
      actsOnCanary(f.name) ? f : Object.freeze({ ...f, verdict: "different" as const, message: "no effect on a canary Ingress: the main Ingress's annotations apply to its requests (as in ingress-nginx)", refuses: false }),
    );
  }
  if (policy.sslPassthrough && policy.canary === null) {
    // (as ingress-nginx's documentation says: passthrough works below HTTP, where no other annotation acts)
    const note = "acts on plain-HTTP requests only: TLS connections to the Ingress's hosts are passed through unread (ssl-passthrough)";
    findings = findings.map((f) =>
      f.name === "ssl-passthrough" || (f.verdict !== "supported" && f.verdict !== "different")
        ? f
        : Object.freeze({ ...f, verdict: "different" as const, message: f.message === "" ? note : `${f.message}; ${note}` }),
    );
  }
  const result: KnownPolicy = { prefix: inputs.prefix, globals: inputs.globals, lookups, policy, findings: Object.freeze(findings) };
  // the same policy object while it is equal, so that unchanged routes stay the same objects
  if (known !== undefined && JSON.stringify(known.policy) === JSON.stringify(policy)) result.policy = known.policy;
  knownPolicies.set(ing, result);
  return result;
}

/**
 * The `default-backend` annotation's Service, at its first port (as ingress-nginx takes it); resolved like a path's
 * backend, so an unchanged Service gives the same Backend object.
 */
function errorBackendOf(ing: Ingress, name: string | null, namespace: string, index: BackendIndex, report: Report): Backend | null {
  if (name === null) return null;
  const field = "metadata.annotations['default-backend']";
  const port = index.services.get(`${namespace}/${name}`)?.spec?.ports?.[0];
  const spec: IngressBackend = { service: { name, port: port?.name !== undefined && port.name !== "" ? { name: port.name } : { number: port?.port ?? 0 } } };
  const { backend, problem } = resolveBackend(spec, namespace, field, index);
  if (problem !== null) report(ing, "warning", problem.reason, field, problem.message);
  return backend;
}

/**
 * `ssl-passthrough`: each host of an Ingress asking for it → the backend of that Ingress's route for the host's
 * root (`/`, or its defaultBackend there), which is where ingress-nginx sends the connections. The oldest Ingress
 * asking for a host has it; a host whose root another Ingress serves is not passed through (its TLS connections
 * are terminated as usual), and the other Ingresses that serve a passthrough host are told what they lose.
 */
function passthroughTable(
  ours: readonly Ingress[],
  inputs: PolicyInputs,
  exactHosts: ReadonlyMap<string, MutableHost>,
  wildcardHosts: ReadonlyMap<string, MutableHost>,
  tlsHostIngresses: ReadonlyMap<string, readonly Ingress[]>,
  report: Report,
): ReadonlyMap<string, Passthrough> {
  const table = new Map<string, Passthrough>();
  const owners = new Map<string, Ingress>();
  const field = `metadata.annotations['${inputs.prefix}/ssl-passthrough']`;
  for (const ing of ours) {
    const parsed = parseIngress(ing);
    const { policy } = ingressPolicy(ing, parsed.ref.namespace, inputs);
    if (!policy.sslPassthrough || policy.canary !== null) continue;
    const hosts = [...new Set(parsed.rules.filter((r) => r.host !== null && !r.invalidHost).map((r) => r.host as string))];
    if (hosts.length === 0) {
      report(ing, "warning", "PassthroughWithoutRoot", field, "ssl-passthrough needs a rule with a host: TLS connections are passed through by the server name they ask for; nothing is passed through");
      continue;
    }
    for (const host of hosts) {
      const owner = owners.get(host);
      if (owner !== undefined) {
        report(ing, "warning", "PassthroughConflict", field, `TLS connections to ${host} are already passed through to the backend of Ingress ${refKey(refOf(owner.metadata))}`);
        continue;
      }
      const rules = host.startsWith("*.") ? wildcardHosts.get(host.slice(2)) : exactHosts.get(host);
      const root = rules === undefined ? null : (rules.prefix.route ?? rules.exact.get("/") ?? rules.regex.find((r) => r.route.path === "/")?.route ?? null);
      if (root === null || refKey(root.ingress) !== refKey(parsed.ref)) {
        const why = root === null ? "there is none" : `Ingress ${refKey(root.ingress)} serves "/" there`;
        report(ing, "warning", "PassthroughWithoutRoot", field, `ssl-passthrough passes connections to the backend of this Ingress's path "/" (or its defaultBackend) on ${host}, and ${why}; TLS connections to ${host} are terminated as usual`);
        continue;
      }
      owners.set(host, ing);
      table.set(host, Object.freeze({ ingress: parsed.ref, backend: root.backend, policy: root.policy }));
    }
  }
  // The Ingresses that lose a passthrough host's HTTPS: those naming it in spec.tls or serving rules for it.
  for (const [host, owner] of owners) {
    const ownerKey = refKey(refOf(owner.metadata));
    for (const ing of tlsHostIngresses.get(host) ?? []) {
      if (ing === owner) continue;
      report(ing, "warning", "PassthroughConflict", "spec.tls", `TLS connections to ${host} are passed through to the backend of Ingress ${ownerKey} (ssl-passthrough): this Ingress's certificate is not served for ${host}`);
    }
    for (const ing of ours) {
      if (ing === owner || !parseIngress(ing).rules.some((r) => r.host === host)) continue;
      // (one that asked for passthrough of the host too was told above)
      if (ingressPolicy(ing, refOf(ing.metadata).namespace, inputs).policy.sslPassthrough) continue;
      report(ing, "warning", "PassthroughConflict", "spec.rules", `TLS connections to ${host} are passed through to the backend of Ingress ${ownerKey} (ssl-passthrough): this Ingress's rules for ${host} serve plain HTTP only`);
    }
  }
  return table;
}

/** A table that routes nothing: what the proxy serves before the first compile. */
export const emptyRouteTable = (): RouteTable => compileRoutes({ ingresses: [], ingressClasses: [], services: [], endpointSlices: [], secrets: [], configMaps: [] });

type Report = (ingress: Ingress, severity: Diagnostic["severity"], reason: DiagnosticReason, field: string, message: string) => void;

/** A path of an Ingress rule as far as it depends on that Ingress alone: worked out once per Ingress object. */
type ParsedPath =
  | { problem: { reason: DiagnosticReason; field: string; message: string } }
  | {
      field: string;
      /** as written ("" for an empty ImplementationSpecific path is "/") */
      path: string;
      pathType: RoutePathType;
      exact: boolean;
      normalized: string;
      /** the Prefix trie's elements */
      segments: string[];
      /** host, type and path: two paths with the same key are one route, which the oldest Ingress keeps */
      claimKey: string;
      spec: IngressBackend;
      /** `namespace/name` of the Service the backend names; null when it names none */
      serviceKey: string | null;
      /** the backend resolved last time, valid while the Service and its EndpointSlices are the same objects */
      resolved?: { service: Service | undefined; slices: readonly EndpointSlice[]; backend: Backend; problem: BackendProblem | null };
      /** the Route made last time */
      route?: Route;
      /** the Canary made last time (a canary Ingress's path) */
      canary?: Canary;
    };

interface ParsedRule {
  rawHost: string;
  /** lower case; null for a host-less rule */
  host: string | null;
  invalidHost: boolean;
  paths: ParsedPath[];
}

interface ParsedIngress {
  ref: ObjectRef;
  rules: ParsedRule[];
}

/**
 * Per Ingress object: informers replace an object when it changes and never modify one in place, so what an
 * Ingress alone decides (hosts, normalised paths, claim keys, trie elements) is worked out once, and a recompile
 * of 10,000 Ingresses redoes only what depends on other objects.
 */
const parsedIngresses = new WeakMap<Ingress, ParsedIngress>();

function parseIngress(ing: Ingress): ParsedIngress {
  const known = parsedIngresses.get(ing);
  if (known !== undefined) return known;
  const ref = Object.freeze(refOf(ing.metadata));
  const namespace = ref.namespace;
  const rules = (ing.spec?.rules ?? []).map((rule, r): ParsedRule => {
    const rawHost = rule.host ?? "";
    const host = rawHost === "" ? null : rawHost.toLowerCase();
    const invalidHost = host !== null && !isValidRuleHost(host);
    const paths = invalidHost ? [] : (rule.http?.paths ?? []).map((p, i) => parsePath(p, `spec.rules[${r}].http.paths[${i}]`, host, namespace));
    return { rawHost, host, invalidHost, paths };
  });
  const parsed = { ref, rules };
  parsedIngresses.set(ing, parsed);
  return parsed;
}

function parsePath(p: HTTPIngressPath, field: string, host: string | null, namespace: string): ParsedPath {
  const pathType = p.pathType;
  if (pathType !== "Exact" && pathType !== "Prefix" && pathType !== "ImplementationSpecific") {
    return { problem: { reason: "InvalidPath", field: `${field}.pathType`, message: `pathType "${pathType ?? ""}" is not Exact, Prefix or ImplementationSpecific` } };
  }
  // ImplementationSpecific is served as Prefix; an empty one means "/", as most controllers read it.
  const path = p.path === undefined || p.path === "" ? (pathType === "ImplementationSpecific" ? "/" : "") : p.path;
  if (!path.startsWith("/")) return { problem: { reason: "InvalidPath", field: `${field}.path`, message: `path "${path}" must start with "/"` } };
  // Matched as requests are: decoded, dot elements resolved, slashes merged (the API already refuses such
  // spellings in Exact and Prefix paths; ImplementationSpecific ones may still hold them).
  const normalized = normalizePath(path);
  if (normalized === null) {
    return { problem: { reason: "InvalidPath", field: `${field}.path`, message: `path "${path}" has a malformed %-escape, an encoded NUL or a ".." above the root` } };
  }
  const exact = pathType === "Exact";
  const segments = exact ? [] : pathSegments(normalized);
  // A Prefix path is claimed in its canonical form: `/a/b/` and `/a//b` are both `/a/b`.
  const claimKey = `${host ?? ""} ${exact ? "Exact" : "Prefix"} ${exact ? normalized : `/${segments.join("/")}`}`;
  const spec = p.backend ?? {};
  const serviceKey = typeof spec.service?.name === "string" && spec.service.name !== "" ? `${namespace}/${spec.service.name}` : null;
  return { field, path, pathType, exact, normalized, segments, claimKey, spec, serviceKey };
}

/** The backend of a path, resolved again only when its Service or that Service's EndpointSlices changed. */
function pathBackend(entry: Extract<ParsedPath, { claimKey: string }>, namespace: string, index: BackendIndex, ing: Ingress, report: Report): Backend {
  const { service, slices } = backendInputs(entry.serviceKey, index);
  let resolved = entry.resolved;
  if (resolved === undefined || resolved.service !== service || !sameObjects(resolved.slices, slices)) {
    resolved = { service, slices, ...resolveBackend(entry.spec, namespace, `${entry.field}.backend`, index) };
    entry.resolved = resolved;
  }
  if (resolved.problem !== null) report(ing, "error", resolved.problem.reason, resolved.problem.field, resolved.problem.message);
  return resolved.backend;
}

const newHost = (): MutableHost => ({ exact: new Map(), prefix: { route: null, children: new Map() }, regex: [] });

/** Per Route object (reused while unchanged): its compiled regex. */
const regexRoutes = new WeakMap<Route, RegexRoute>();

function regexRouteOf(route: Route): RegexRoute {
  let known = regexRoutes.get(route);
  if (known === undefined) {
    known = Object.freeze({ route, pattern: regexOf(route.path as string) });
    regexRoutes.set(route, known);
  }
  return known;
}

/**
 * ingress-nginx's order of a server's locations: the longer path string first, then the greater one (byte order);
 * regexes are tried in that order. Equal paths (an Exact and a Prefix one, claimed apart) put Exact first.
 */
export function compareRegexRoutes(a: Route, b: Route): number {
  const pa = a.path ?? "";
  const pb = b.path ?? "";
  if (pa.length !== pb.length) return pb.length - pa.length;
  if (pa !== pb) return pa < pb ? 1 : -1;
  return (a.pathType === "Exact" ? 0 : 1) - (b.pathType === "Exact" ? 0 : 1);
}

function insertPrefix(root: MutableNode, segments: string[], route: Route): void {
  let node = root;
  for (const s of segments) {
    let child = node.children.get(s);
    if (child === undefined) {
      child = { route: null, children: new Map() };
      node.children.set(s, child);
    }
    node = child;
  }
  node.route = route;
}

function ruleHosts(ing: Ingress): string[] {
  const hosts = new Set<string>();
  for (const rule of ing.spec?.rules ?? []) if (rule.host) hosts.add(rule.host);
  return [...hosts];
}

const NO_CANARIES: readonly Canary[] = Object.freeze([]);
/** one list object per Canary, so that an unchanged route keeps its object across compiles */
const canaryLists = new WeakMap<Canary, readonly Canary[]>();
function canaryList(canary: Canary): readonly Canary[] {
  let list = canaryLists.get(canary);
  if (list === undefined) {
    list = Object.freeze([canary]);
    canaryLists.set(canary, list);
  }
  return list;
}

/** ClusterIP backends by Service object and port as written: the same object while the Service is. */
const clusterIpBackends = new WeakMap<Service, Map<string | number, Backend>>();

/**
 * `service-upstream`: the Service's ClusterIP and port as the only endpoint (kube-proxy balances from there). A
 * Service without a ClusterIP (headless, ExternalName) keeps its endpoints, reported as an invalid annotation.
 */
function serviceUpstream(ing: Ingress, policy: RoutePolicy, backend: Backend, index: BackendIndex, prefix: string, report: Report): Backend {
  if (!policy.serviceUpstream || backend.unavailable !== null || backend.service === null || backend.port === null) return backend;
  const svc = index.services.get(`${backend.namespace}/${backend.service}`);
  if (svc === undefined) return backend;
  const key = `${prefix}/service-upstream`;
  const field = `metadata.annotations['${key}']`;
  const clusterIP = svc.spec?.clusterIP ?? "";
  if (svc.spec?.type === "ExternalName" || clusterIP === "" || clusterIP === "None") {
    const what = svc.spec?.type === "ExternalName" ? "an ExternalName Service" : "a headless Service";
    report(ing, "warning", "InvalidAnnotation", field, `${key} "true" is not valid for Service ${backend.namespace}/${backend.service}: ${what} has no ClusterIP; its endpoints are used`);
    return backend;
  }
  const written = backend.port;
  const svcPort = svc.spec?.ports?.find((p) => (typeof written === "number" ? p.port === written : p.name === written));
  if (svcPort?.port === undefined) return backend;
  let known = clusterIpBackends.get(svc);
  if (known === undefined) {
    known = new Map();
    clusterIpBackends.set(svc, known);
  }
  let made = known.get(written);
  if (made === undefined) {
    made = Object.freeze({ ...backend, endpoints: Object.freeze([Object.freeze({ host: clusterIP, port: svcPort.port })]) });
    known.set(written, made);
  }
  return made;
}
