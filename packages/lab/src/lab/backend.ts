// A sample backend: answers every HTTP request with its own name, so a test can tell which one served it, and says
// in response headers what reached it (the request target and Host, after any rewrite by the ingress).
import { createServer, type Server } from "node:http";

export function startBackend(name: string, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    // Drain the body so keep-alive connections stay usable.
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "x-backend": name, "x-request-uri": req.url ?? "", "x-request-host": req.headers.host ?? "" });
      res.end(`${name}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
