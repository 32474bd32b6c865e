// One BgpSession dialling with the speaker's own sockets (TCP MD5, TTL), in a child process a test can put in a
// network namespace: `node bgp-session-process.ts '<json>'` with {session: SessionOptions, password?, ttl,
// routes}. Prints one JSON line per state change; exits on SIGTERM after stopping the session.
import { BgpSession, type Route, type SessionOptions } from "@bollard/bgp";
import { bgpSocket } from "../../src/bgp/tcp-socket.ts";

const { session: options, password, ttl, routes } = JSON.parse(process.argv[2] ?? "{}") as { session: SessionOptions; password?: string; ttl: number; routes: Route[] };
const session = new BgpSession({ ...options, createSocket: (peer) => bgpSocket(peer, { ...(password ? { password } : {}), ttl }) });
session.on("state", ({ to }) => process.stdout.write(`${JSON.stringify({ state: to })}\n`));
session.setRoutes(routes);
session.start();
process.once("SIGTERM", () => {
  void session.stop().then(() => process.exit(0));
});
