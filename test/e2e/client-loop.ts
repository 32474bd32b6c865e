// Run inside the client namespace by the e2e suite: requests URL (with a Host header) back to back for
// DURATION ms and prints {"ok":N,"failed":N,"errors":{...},"bodies":{...}} — a load loop bounded in time.
// Each request on a connection of its own: with keep-alive, a request written onto a connection the server is
// closing as idle fails with ECONNRESET (a race every HTTP client meets and retries), which says nothing about
// whether traffic flows; a new connection per request does.
import { request } from "node:http";

const [url, host, durationMs] = [process.argv[2] as string, process.argv[3] as string, Number(process.argv[4] ?? "3000")];
const result = { ok: 0, failed: 0, errors: {} as Record<string, number>, bodies: {} as Record<string, number> };
const deadline = Date.now() + durationMs;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { host }, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => {
        if (res.statusCode === 200) result.ok++;
        else {
          result.failed++;
          result.errors[`status ${res.statusCode}`] = (result.errors[`status ${res.statusCode}`] ?? 0) + 1;
        }
        const key = body.trim().slice(0, 40);
        result.bodies[key] = (result.bodies[key] ?? 0) + 1;
        resolve();
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => {
      result.failed++;
      result.errors[err.message] = (result.errors[err.message] ?? 0) + 1;
      resolve();
    });
    req.end();
  });
}

while (Date.now() < deadline) await once();
process.stdout.write(`${JSON.stringify(result)}\n`);
