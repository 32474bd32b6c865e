// `bollard explain route -f PATH [-f PATH …] (--url URL [--url URL …] | --host HOST --target TARGET [--https])`: what the
// ingress answers to a request, from manifests on disk. The manifests go through the same compiler the ingress
// runs, and the request through the native data plane's own `decide` — the code its listeners run — so the
// request target is read as raw bytes, exactly as the proxy reads it (never re-parsed as a WHATWG URL).
import { readManifests } from "@bollard/core";
import { createDataPlane, type Decision } from "@bollard/dataplane";
import { type Backend, compileRoutes, describeMatch, describePolicy, matchPassthrough, type Passthrough, generateDefaultCertificate, mergeSnapshots, snapshotFromObjects } from "@bollard/ingress";
import { CliUsageError, type Command, parseFlags } from "../command.ts";
import { classFlags, classFlagsUsage, classOptionsOf, offlineCompileOptions } from "./class-flags.ts";

const usage = "usage: bollard explain route -f PATH [-f PATH …] (--url URL [--url URL …] | --host HOST --target TARGET [--https])";

const help = `${usage}
  -f PATH          a YAML/JSON file or a directory of them (repeatable)
  --url URL        http://HOST[:PORT]TARGET or https://…, e.g. http://foo.com/api?q; everything after the
                   authority is the request target, taken as it is written (no %-decoding, no dot removal);
                   repeatable: one answer per URL, in order
  --host HOST      the Host header (with --target)
  --target TARGET  the request target as the client sends it, e.g. /api/../x?q
  --https          the request came over HTTPS (with --host/--target; --url says it by its scheme)
${classFlagsUsage}

Prints one JSON line per request: "status" is the ingress's own answer (400, 404, 503, 308) or null when the request is
proxied; with a matched route its Ingress, host, path, Service and port; "endpoints" where it is proxied to;
"location" for the 308; "reason" for a 503; "policy" what the Ingress's annotations ask of the request;
"errorBackend" the default-backend; an HTTPS request to an ssl-passthrough host: "passthrough" and where its TLS goes.`;

/** What `explain route` prints: the route fields of `describeMatch` plus the outcome. */
export type RouteOutcome = Record<string, unknown> & { status: number | null };

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    url: { type: "string", multiple: true },
    host: { type: "string" },
    target: { type: "string" },
    https: { type: "boolean" },
    ...classFlags,
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  const requests = requestsOf(values);

  const snapshot = mergeSnapshots((await readManifests(values.file)).map((file) => snapshotFromObjects(file.objects, file.path)));
  // (the plane is never listening here: its default certificate only satisfies the constructor)
  const plane = createDataPlane({ defaultCertificate: generateDefaultCertificate() });
  const table = compileRoutes(snapshot, offlineCompileOptions(classOptionsOf(values), snapshot).options);
  plane.setTable(table);
  const answer = (request: RequestHead) => {
    // an HTTPS request to a passthrough host never reaches the proxy's HTTP side: its TLS goes to the backend unread
    const pass = request.secure ? matchPassthrough(table, request.host) : null;
    return pass !== null ? describePassthrough(pass) : describeOutcome(plane.decide(request));
  };
  process.stdout.write(requests.map((request) => `${JSON.stringify(answer(request))}\n`).join(""));
  return 0;
};

interface RequestHead {
  host: string;
  target: string;
  secure: boolean;
}

/** The request heads from the flags: each `--url`, or `--host` + `--target` (+ `--https`). */
function requestsOf(values: { url?: string[] | undefined; host?: string | undefined; target?: string | undefined; https?: boolean | undefined }): RequestHead[] {
  if (values.url !== undefined) {
    if (values.host !== undefined || values.target !== undefined || values.https !== undefined) throw new CliUsageError(`--url goes without --host, --target and --https\n${usage}`);
    return values.url.map(requestOfUrl);
  }
  if (values.host === undefined || values.target === undefined) throw new CliUsageError(`--url, or --host and --target, are required\n${usage}`);
  return [{ host: values.host, target: values.target, secure: values.https ?? false }];
}

/**
 * scheme://authority then the target: everything from the first "/" or "?" after the authority, up to a
 * fragment (the client's, never sent). Nothing else is touched: the target is what the proxy would receive.
 */
function requestOfUrl(url: string): RequestHead {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(url);
  if (m === null) throw new CliUsageError(`--url "${url}" is not a URL like http://host/path`);
  const [, scheme = "", authority = "", rest = ""] = m;
  if (scheme.toLowerCase() !== "http" && scheme.toLowerCase() !== "https") throw new CliUsageError(`--url must be http:// or https://, not ${scheme}://`);
  if (authority === "" || authority.includes("@")) throw new CliUsageError(`--url "${url}" has no host (or has user info)`);
  // A client sends "/" for an empty path, and "/?q" for "?q" (RFC 9112 §3.2.1).
  return { host: authority, target: rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest, secure: scheme.toLowerCase() === "https" };
}

/** The decision as JSON: status, the route (as `describeMatch` describes it), and what the status depends on. */
export function describeOutcome(decision: Decision): RouteOutcome {
  const { status, route, location } = decision;
  if (route === null) return { status, match: false };
  const out: RouteOutcome = { status, ...describeMatch(route) };
  if (status === 308 && location !== null) out.location = location;
  if (status === 503) out.reason = route.policy.refuse?.reason ?? route.backend.unavailable ?? "no ready endpoint";
  // the policies the request meets (what the Ingress's annotations ask)
  const policy = describePolicy(route.policy);
  if (Object.keys(policy).length > 0) out.policy = policy;
  if (status === null) out.endpoints = endpointsOf(route.backend);
  // default-backend: answers custom-http-errors, and the route while its own Service has no endpoints
  if (route.errorBackend !== null) out.errorBackend = { service: route.errorBackend.service, port: route.errorBackend.port, endpoints: endpointsOf(route.errorBackend) };
  return out;
}

/** An HTTPS request to an ssl-passthrough host: where its TLS connection goes, and what may still refuse it. */
export function describePassthrough(pass: Passthrough): RouteOutcome {
  const { refuse, basicAuth, externalAuth, clientTls, access } = pass.policy;
  const refused =
    refuse !== null
      ? refuse.reason
      : basicAuth !== null || externalAuth !== null || clientTls !== null
        ? "the Ingress asks for authentication, which a stream passed through unread cannot give: the connection is closed"
        : null;
  return {
    status: null,
    match: true,
    passthrough: true,
    namespace: pass.ingress.namespace,
    ingress: pass.ingress.name,
    service: pass.backend.service,
    port: pass.backend.port,
    endpoints: endpointsOf(pass.backend),
    ...(refused === null ? {} : { refused }),
    ...(access === null ? {} : { sourceRanges: { allow: access.allow, deny: access.deny, checkedOn: "the connection's peer address" } }),
  };
}

const endpointsOf = (backend: Backend) => backend.endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`));
