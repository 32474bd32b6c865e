// The native data plane as its own process for the `dataplane` bench part, routing bench.local to a backend on
// 127.0.0.1 with a one-Ingress table. Prints "ready <port>".
//   node bench/lib/dataplane-main.ts native <port> <backend-port> [--https-port P --cert FILE --key FILE] [--workers N]
//     [--no-tls-resumption] [--policies]
// --policies: the Ingress carries BENCH_POLICY_ANNOTATIONS (five ingress-nginx annotations: the `policies` part).
// With --cert/--key that pair is the default certificate (what every TLS client gets here: the table has no TLS
// hosts), so nginx can serve the same one. --no-tls-resumption: a full handshake for every TLS connection, as
// nginx with `ssl_session_tickets off; ssl_session_cache off`.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createDataPlane } from "@bollard/dataplane";
import { compileRoutes, generateDefaultCertificate } from "@bollard/ingress";
import { BENCH_POLICY_ANNOTATIONS } from "./policies.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { policies: { type: "boolean" }, "https-port": { type: "string" }, cert: { type: "string" }, key: { type: "string" }, workers: { type: "string" }, "no-tls-resumption": { type: "boolean" } },
});
const [kind, portArg, backendArg] = positionals;
const port = Number(portArg);
const backendPort = Number(backendArg);
const httpsPort = values["https-port"] === undefined ? null : Number(values["https-port"]);
const workers = Number(values.workers ?? 1);
const certificate = values.cert !== undefined && values.key !== undefined ? { cert: readFileSync(values.cert, "utf8"), key: readFileSync(values.key, "utf8") } : generateDefaultCertificate();
const table = compileRoutes({
  ingresses: [
    {
      metadata: { name: "bench", namespace: "bench", annotations: values.policies ? BENCH_POLICY_ANNOTATIONS : {} },
      spec: { ingressClassName: "bollard", rules: [{ host: "bench.local", http: { paths: [{ path: values.policies ? "/(.*)" : "/", pathType: "ImplementationSpecific", backend: { service: { name: "backend", port: { number: 80 } } } }] } }] },
    },
  ],
  ingressClasses: [{ metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } }],
  services: [{ metadata: { name: "backend", namespace: "bench" }, spec: { ports: [{ name: "http", port: 80 }] } }],
  endpointSlices: [
    {
      metadata: { name: "backend-1", namespace: "bench", labels: { "kubernetes.io/service-name": "backend" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: backendPort }],
      endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
    },
  ],
  secrets: [],
  configMaps: [{ metadata: { name: "bench-headers", namespace: "bench" }, data: { "X-Bench": "policy" } }],
});

if (kind !== "native") {
  process.stderr.write("usage: dataplane-main.ts native <port> <backend-port> [--https-port P --cert FILE --key FILE] [--workers N] [--no-tls-resumption]\n");
  process.exit(2);
}
const plane = createDataPlane({ defaultCertificate: certificate, tlsSessionResumption: values["no-tls-resumption"] !== true });
plane.setTable(table);
plane.listen({ host: "127.0.0.1", httpPort: port, httpsPort, workers });
process.stdout.write(`ready ${port}\n`);
// The native plane's threads do not hold Node's event loop open: this timer does, until SIGTERM.
const keepAlive = setInterval(() => {}, 60_000);
process.once("SIGTERM", () => {
  clearInterval(keepAlive);
  void plane.shutdown(1000).then(() => process.exit(0));
});
