import { registerHooks } from "node:module";
import { delimiter } from "node:path";

// client-node's KubeConfig (kubeconfig files, in-cluster config, auth plugins, proxies for node:https) is all
// this project uses of it, but its module also imports, for functions the project never calls, the
// generated API (`./gen/index.js`: every resource model and API class, for `makeApiClient`) and undici (for
// `applyToFetchOptions`): together some 60 MiB of RSS in every process. Requests go through ./request.ts
// with `applyToHTTPSOptions`, so those two imports of that one module are answered with stubs that throw if
// ever called.
const stub = (exports: string[]) =>
  `data:text/javascript,${encodeURIComponent(
    [
      "const unavailable = () => { throw new Error('@bollard/core loads client-node without its generated API and undici: use kubeRequest'); };",
      ...exports.map((name) => (name.endsWith("()") ? `export const ${name.slice(0, -2)} = unavailable;` : `export class ${name} { constructor() { unavailable(); } }`)),
    ].join("\n"),
  )}`;
// The OIDC auth provider (openid-client, jose, oauth4webapi: ~11 MiB resident) only for a kubeconfig whose user
// has `auth-provider: oidc`: config.js gets a stand-in that answers `isAuthProvider` itself and loads the real
// one on its first `applyAuthentication`.
const oidcOnDemand = `data:text/javascript,${encodeURIComponent(
  [
    "let real;",
    "export class OpenIDConnectAuth {",
    "  isAuthProvider(user) { return user.authProvider?.name === 'oidc'; }",
    `  async applyAuthentication(user, opts, overrideClient) { real ??= new (await import(${JSON.stringify(import.meta.resolve("@kubernetes/client-node/dist/oidc_auth.js"))})).OpenIDConnectAuth(); return real.applyAuthentication(user, opts, overrideClient); }`,
    "}",
  ].join("\n"),
)}`;
// Modules client-node's KubeConfig imports for what few kubeconfigs need, loaded (with `require`, from where
// client-node would have imported them) by the first call of one of their exports: a SOCKS `proxy-url`
// (socks-proxy-agent, whose agent-base imports node:http as a namespace and so loads Node's own undici, ~3 MiB; socks
// with ip-address and smart-buffer), the gcp and azure auth providers' token paths (jsonpath-plus), and the YAML of a
// kubeconfig file (js-yaml: in a pod the config is the service account's, and is no YAML). Each export is
// a function that calls, or constructs, the real one; `members` name the static functions an export is used by.
// (Required from client-node's directory, not from one of the modules below, which the hook would answer again.)
const clientNode = new URL("../package.json", import.meta.resolve("@kubernetes/client-node/dist/config.js")).href;
const onDemand = (specifier: string, exports: Record<string, string[]>) =>
  `data:text/javascript,${encodeURIComponent(
    [
      'import { createRequire } from "node:module";',
      `let real; const module_ = () => (real ??= createRequire(${JSON.stringify(clientNode)})(${JSON.stringify(specifier)}));`,
      ...Object.entries(exports).flatMap(([name, members]) => [
        `export function ${name}(...args) { const f = module_().${name}; return new.target === undefined ? f.apply(this, args) : Reflect.construct(f, args); }`,
        ...members.map((member) => `${name}.${member} = (...args) => module_().${name}.${member}(...args);`),
      ]),
    ].join("\n"),
  )}`;
const STUBS: Record<string, string> = {
  "./gen/index.js": stub(["createConfiguration()", "ServerConfiguration"]),
  undici: stub(["Agent", "ProxyAgent"]),
  "./oidc_auth.js": oidcOnDemand,
  "socks-proxy-agent": onDemand("socks-proxy-agent", { SocksProxyAgent: [] }),
  socks: onDemand("socks", { SocksClient: ["createConnection"] }),
  "js-yaml": onDemand("js-yaml", { load: [] }),
  "jsonpath-plus": onDemand("jsonpath-plus", { JSONPath: [] }),
  // Node 24's ES module of node:http reads the CommonJS one's lazy WebSocket, CloseEvent and MessageEvent, which load
  // Node's own undici (~3 MiB); config.js takes only the default export.
  "node:http": `data:text/javascript,${encodeURIComponent('export default process.getBuiltinModule("node:http");')}`,
};
// The modules of client-node that import them (azure_auth.js and gcp_auth.js: jsonpath-plus).
const STUBBED_IN = /\/@kubernetes\/client-node\/dist\/(config|azure_auth|gcp_auth)\.js$/;
registerHooks({
  resolve(specifier, context, next) {
    const url = STUBS[specifier];
    if (url !== undefined && STUBBED_IN.test(context.parentURL ?? "")) return { url, format: "module", shortCircuit: true };
    return next(specifier, context);
  },
});
const { KubeConfig } = await import("@kubernetes/client-node/dist/config.js");
type KubeConfig = InstanceType<typeof KubeConfig>;

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

/**
 * The API client configuration: the `kubeconfig` file if given, else the file(s) in env
 * KUBECONFIG, else the pod's service account (in-cluster).
 */
export function createKubeConfig(options: { kubeconfig?: string } = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  const files = options.kubeconfig
    ? [options.kubeconfig]
    : (process.env.KUBECONFIG ?? "").split(delimiter).filter((file) => file !== "");
  if (files.length > 0) {
    const [first, ...rest] = files as [string, ...string[]];
    loadFile(kubeConfig, first);
    for (const file of rest) {
      const more = new KubeConfig();
      loadFile(more, file);
      try {
        kubeConfig.mergeConfig(more, true);
      } catch (error) {
        throw new KubeConfigError(`cannot merge kubeconfig ${file}: ${(error as Error).message}`, { cause: error });
      }
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new KubeConfigError(
        "no kubeconfig given, KUBECONFIG unset, and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)",
      );
    }
    kubeConfig.loadFromCluster();
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new KubeConfigError(`kubeconfig has no current cluster (context ${JSON.stringify(kubeConfig.currentContext)})`);
  }
  return kubeConfig;
}

function loadFile(kubeConfig: KubeConfig, file: string): void {
  try {
    kubeConfig.loadFromFile(file);
  } catch (error) {
    throw new KubeConfigError(`cannot load kubeconfig ${file}: ${(error as Error).message}`, { cause: error });
  }
}
