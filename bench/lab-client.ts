// Run by the lab benchmark inside the lab's client namespace: CONCURRENCY loops each request URL (with a Host
// header) on a new connection, one after another, for DURATION ms, and print every request as
// [startMs, endMs, status (0 = failed), body] on the wall clock, which the namespaces share with the runner.
import { request } from "node:http";

const [url, host, durationArg, concurrencyArg, timeoutArg] = process.argv.slice(2);
const durationMs = Number(durationArg ?? "5000");
const concurrency = Number(concurrencyArg ?? "4");
const timeoutMs = Number(timeoutArg ?? "200");
const records: [number, number, number, string][] = [];
const deadline = Date.now() + durationMs;

function once(): Promise<void> {
  const start = Date.now();
  return new Promise((resolve) => {
    let finished = false;
    const done = (status: number, body: string) => {
      if (finished) return;
      finished = true;
      records.push([start, Date.now(), status, body]);
      resolve();
    };
    const req = request(url as string, { headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => done(res.statusCode ?? 0, body.trim().slice(0, 40)));
      res.on("error", () => done(0, "response error"));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => done(0, err.message));
    req.end();
  });
}

async function loop(offsetMs: number): Promise<void> {
  await new Promise((r) => setTimeout(r, offsetMs));
  while (Date.now() < deadline) await once();
}

await Promise.all(Array.from({ length: concurrency }, (_, i) => loop((i * timeoutMs) / concurrency)));
process.stdout.write(`${JSON.stringify(records)}\n`);
