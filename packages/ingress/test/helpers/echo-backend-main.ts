// An echo backend as its own process, for running inside a network namespace:
//   ip netns exec NS node echo-backend-main.ts NAME HOST PORT
// Prints "listening" once it accepts connections; stops on SIGTERM.
import { startBackend } from "./backends.ts";

const [name = "backend", host = "127.0.0.1", port = "0"] = process.argv.slice(2);
const backend = await startBackend(name, undefined, { host, port: Number(port) });
process.stdout.write(`listening ${backend.port}\n`);
process.on("SIGTERM", () => {
  void backend.close().then(() => process.exit(0));
});
