// Runs BgpSessions in a child process, so a test can put them in a network namespace (`ip netns exec NS node
// speaker-process.ts`). Reads one JSON command per line on stdin, writes one JSON event per line on stdout:
//   in:  {"sessions": [{...SessionOptions, "routes": [Route...]}]}   start these sessions
//        {"routes": [[Route...], ...]}                               replace each session's routes
//        {"stop": true}                                              stop every session and exit
//   out: {"session": i, "state": "Established"} | {"session": i, "notification": {...}} | {"stopped": true}
import { createInterface } from "node:readline";
import { BgpSession, type Route, type SessionOptions } from "@bollard/bgp";

const sessions: BgpSession[] = [];
const out = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { sessions?: (SessionOptions & { routes: Route[] })[]; routes?: Route[][]; stop?: true };
  for (const { routes, ...options } of command.sessions ?? []) {
    const index = sessions.length;
    const session = new BgpSession(options);
    session.on("state", ({ to }) => out({ session: index, state: to }));
    session.on("notification", (n) => out({ session: index, notification: n }));
    session.on("skipped", (skipped) => out({ session: index, skipped }));
    session.setRoutes(routes);
    session.start();
    sessions.push(session);
  }
  for (const [i, routes] of (command.routes ?? []).entries()) sessions[i]?.setRoutes(routes);
  if (command.stop) {
    await Promise.all(sessions.map((s) => s.stop()));
    out({ stopped: true });
    process.exit(0);
  }
}
