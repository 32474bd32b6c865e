// The Node data plane in a process of its own, for tests that judge it from outside (data-plane.ts): argv[2] is
// its options (JSON); it speaks the protocol of data-plane-protocol.ts. A crash is the process's exit, its memory
// its own RSS.
import { createLogger } from "@bollard/core";
import { createProxy, generateDefaultCertificate, type ProxyOptions } from "../../src/index.ts";
import { serveDataPlaneProtocol } from "./data-plane-protocol.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as Partial<ProxyOptions>;
const logger = createLogger({ name: "data-plane-under-test", level: process.env.BOLLARD_TEST_LOG_LEVEL ?? "error" });
const proxy = createProxy({ ...options, defaultCertificate: generateDefaultCertificate(), logger });
await serveDataPlaneProtocol(proxy, await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0 }));
