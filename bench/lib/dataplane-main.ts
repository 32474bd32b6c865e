// One data plane as its own process for the `dataplane` bench part: the native plane or today's Node proxy,
// routing bench.local to a backend on 127.0.0.1, with the same one-Ingress table. Prints "ready <port>".
//   node bench/lib/dataplane-main.ts native|node <port> <backend-port>
import { createDataPlane } from "@bollard/dataplane";
import { compileRoutes, createProxy, generateDefaultCertificate } from "@bollard/ingress";

const [kind, portArg, backendArg] = process.argv.slice(2);
const port = Number(portArg);
const backendPort = Number(backendArg);
const table = compileRoutes({
  ingresses: [
    {
      metadata: { name: "bench", namespace: "bench" },
      spec: { ingressClassName: "bollard", rules: [{ host: "bench.local", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "backend", port: { number: 80 } } } }] } }] },
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
});

let stop: () => Promise<void>;
if (kind === "native") {
  const plane = createDataPlane({ defaultCertificate: generateDefaultCertificate() });
  plane.setTable(table);
  plane.listen({ host: "127.0.0.1", httpPort: port, workers: 1 });
  stop = () => plane.shutdown(1000);
} else if (kind === "node") {
  const proxy = createProxy({ defaultCertificate: generateDefaultCertificate() });
  proxy.setTable(table);
  await proxy.listen({ host: "127.0.0.1", httpPort: port, httpsPort: null });
  stop = () => proxy.shutdown(1000);
} else {
  process.stderr.write("usage: dataplane-main.ts native|node <port> <backend-port>\n");
  process.exit(2);
}
process.stdout.write(`ready ${port}\n`);
// The native plane's threads do not hold Node's event loop open: this timer does, until SIGTERM.
const keepAlive = setInterval(() => {}, 60_000);
process.once("SIGTERM", () => {
  clearInterval(keepAlive);
  void stop().then(() => process.exit(0));
});
