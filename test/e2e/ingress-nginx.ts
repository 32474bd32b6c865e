// The ingress-nginx switch-over scenario of the user story: real-world Ingresses of class `nginx` (IngressClass with
// ingress-nginx's controller), applied unchanged, served by a Bollard ingress started with --watch-ingress-class=nginx.
const P = "nginx.ingress.kubernetes.io";

/** `admin` / `s3cret` (openssl passwd -apr1 -salt bollard s3cret), as `htpasswd -m` writes it. */
export const BASIC_AUTH_HTPASSWD = "admin:$apr1$bollard$VzIxdlgrkUr/pkFMpJLsA/\n";

const ingress = (name: string, host: string, annotations: Record<string, string>, service = "demo-node1", path = "/", pathType = "Prefix") => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "Ingress",
  metadata: { name, namespace: "default", annotations },
  spec: {
    ingressClassName: "nginx",
    rules: [{ host, http: { paths: [{ path, pathType, backend: { service: { name: service, port: { name: "http" } } } }] } }],
  },
});

const nodeService = (node: string) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: `demo-${node}`, namespace: "default" },
  spec: { selector: { app: "demo", "lab.bollard.dev/node": node }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
});

/** Everything the scenario applies; `clientIPv4` is the lab client's address (allowed by the allow-list). */
export function ingressNginxManifests(clientIPv4: string): object[] {
  return [
    { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "nginx" }, spec: { controller: "k8s.io/ingress-nginx" } },
    nodeService("node1"),
    nodeService("node2"),
    {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: { name: "basic-auth", namespace: "default" },
      data: { auth: Buffer.from(BASIC_AUTH_HTPASSWD).toString("base64") },
    },
    // rewrite: /api/items reaches the backend as /items
    ingress("rewrite", "rewrite.local", { [`${P}/use-regex`]: "true", [`${P}/rewrite-target`]: "/$2" }, "demo-node1", "/api(/|$)(.*)", "ImplementationSpecific"),
    // basic auth
    ingress("basic", "basic.local", { [`${P}/auth-type`]: "basic", [`${P}/auth-secret`]: "basic-auth", [`${P}/auth-realm`]: "Authentication Required" }),
    // allow-lists: the client's address, and a range the client is not in
    ingress("allowed", "allowed.local", { [`${P}/whitelist-source-range`]: `${clientIPv4}/32` }),
    ingress("denied", "denied.local", { [`${P}/allowlist-source-range`]: "192.0.2.0/24" }),
    // canary by header (and weight 0) beside the main Ingress; a second host with a weight-100 canary
    ingress("shop", "canary.local", {}),
    ingress("shop-canary", "canary.local", { [`${P}/canary`]: "true", [`${P}/canary-by-header`]: "X-Canary", [`${P}/canary-weight`]: "0" }, "demo-node2"),
    ingress("blue", "weight.local", {}),
    ingress("green", "weight.local", { [`${P}/canary`]: "true", [`${P}/canary-weight`]: "100" }, "demo-node2"),
    // CORS
    ingress("cors", "cors.local", { [`${P}/enable-cors`]: "true", [`${P}/cors-allow-origin`]: "https://app.example.com", [`${P}/cors-allow-methods`]: "GET, POST" }),
    // redirects
    ingress("moved", "moved.local", { [`${P}/permanent-redirect`]: "https://new.example.com/shop" }),
    ingress("approot", "approot.local", { [`${P}/app-root`]: "/app" }),
    // bad input: a security annotation that cannot be honoured answers 503 (never unprotected); a snippet is refused
    ingress("broken-auth", "broken.local", { [`${P}/auth-url`]: "http://auth.example.com/check?user=$remote_user" }),
    ingress("snippet", "snippet.local", { [`${P}/configuration-snippet`]: 'more_set_headers "X-Frame-Options: DENY";' }),
  ];
}
