// The native data plane as a process of its own, speaking the protocol of
// packages/ingress/test/hostile/data-plane-protocol.ts (argv[2]: options as JSON), so the hostile-input suite can
// judge it from its listeners only.
import { generateDefaultCertificate } from "@bollard/ingress";
import { serveDataPlaneProtocol } from "../../ingress/test/hostile/data-plane-protocol.ts";
import { createDataPlane, type DataPlaneOptions } from "../src/index.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as Partial<DataPlaneOptions>;
const plane = createDataPlane({ ...options, defaultCertificate: generateDefaultCertificate() });
await serveDataPlaneProtocol(plane, plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0, workers: 1 }));
