// A sample backend: answers every HTTP request with its own name, so a test can tell which one served it.
import { createServer, type Server } from "node:http";

export function startBackend(name: string, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    // Drain the body so keep-alive connections stay usable.
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "x-backend": name });
      res.end(`${name}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
