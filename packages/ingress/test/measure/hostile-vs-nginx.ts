// The hostile HTTP/1 cases of test/hostile, sent side by side to nginx (configured as ingress-nginx configures a
// location, WebSocket headers included) and to Bollard's data plane, each in front of an upstream that records
// every byte. Prints a Markdown table: the status each answered, and what reached its upstream. Not a test:
// it documents the comparison in docs/security.md. Needs /usr/sbin/nginx (Debian's nginx-light).
//
//   npx node packages/ingress/test/measure/hostile-vs-nginx.ts
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawExchange, statusOf } from "../helpers/client.ts";
import { freePort } from "../helpers/wait.ts";
import { startDataPlane } from "../hostile/data-plane.ts";
import { type LoggingUpstream, startLoggingUpstream } from "../hostile/logging-upstream.ts";

const HOST = "foo.test";
const upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
const CASES: { name: string; bytes: string; waitMs?: number; look?: (u: LoggingUpstream) => string }[] = [
  { name: "`GET / HTTP/2.0` (18 bytes)", bytes: "GET / HTTP/2.0\r\n\r\n" },
  { name: "`HTTP/3.0` request line", bytes: `GET / HTTP/3.0\r\nHost: ${HOST}\r\n\r\n` },
  { name: "`Transfer-Encoding: gzip, chunked`", bytes: `POST / HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n` },
  { name: "chunked on HTTP/1.0", bytes: `POST / HTTP/1.0\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` },
  { name: "Content-Length + Transfer-Encoding", bytes: `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` },
  { name: "two different Content-Length", bytes: `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab` },
  { name: "two Host headers", bytes: `GET / HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.test\r\n\r\n` },
  { name: "absolute-form target", bytes: `GET http://${HOST}/abs HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n` },
  { name: "malformed escape `/a%zz`", bytes: `GET /a%zz HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n` },
  { name: "`..` above the root", bytes: `GET /../x HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n` },
  {
    name: "Upgrade + Content-Length carrying a request",
    bytes: `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\n${upgrade}Content-Length: 40\r\n\r\nGET /next HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: GET /SMUGGLED-ADMIN HTTP/1.1\r\n\r\n`,
    waitMs: 1_500,
    look: (u) => (u.text().includes("SMUGGLED") ? "`SMUGGLED` bytes reached it" : "no smuggled bytes"),
  },
  {
    name: "`Connection: close, Host`",
    bytes: `GET /conn-host HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close, Host\r\n\r\n`,
    look: (u) => `Host: ${hostSeen(u, "/conn-host")}`,
  },
  {
    name: "`X_Forwarded_For: 6.6.6.6`",
    bytes: `GET /underscore HTTP/1.1\r\nHost: ${HOST}\r\nX_Forwarded_For: 6.6.6.6\r\nConnection: close\r\n\r\n`,
    look: (u) => (/x_forwarded_for/i.test(u.text()) ? "forwarded" : "dropped"),
  },
  {
    name: "body trickling (10 of 100 bytes, then 2 s silence)",
    bytes: `POST /slow HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`,
    waitMs: 2_000,
    look: (u) => (u.connections.length > 0 ? "upstream connection taken" : "no upstream connection"),
  },
  { name: "20 KiB header", bytes: `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${"a".repeat(20 * 1024)}\r\nConnection: close\r\n\r\n` },
];

function hostSeen(u: LoggingUpstream, target: string): string {
  const head = u.heads.find((h) => h.target === target);
  if (head === undefined) return "(no request)";
  const i = head.rawHeaders.findIndex((v, k) => k % 2 === 0 && v.toLowerCase() === "host");
  return i < 0 ? "(none)" : (head.rawHeaders[i + 1] as string);
}

async function startNginx(dir: string, port: number, upstreamPort: number): Promise<ChildProcess> {
  const config = `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    server_name ${HOST};
    client_max_body_size 1m;
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`;
  await writeFile(join(dir, "nginx.conf"), config);
  const child = spawn("/usr/sbin/nginx", ["-c", join(dir, "nginx.conf"), "-p", dir, "-e", join(dir, "error.log")], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    if ((await rawExchange(port, "", 50).catch(() => null)) !== null) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error("nginx did not start");
}

const dir = await mkdtemp(join(tmpdir(), "bollard-hostile-nginx-"));
const nginxPort = await freePort();
const rows: string[] = [];
for (const c of CASES) {
  const nginxUp = await startLoggingUpstream();
  const bollardUp = await startLoggingUpstream();
  const nginx = await startNginx(dir, nginxPort, nginxUp.port);
  const plane = await startDataPlane("native", { clientBodyTimeout: 60_000 });
  try {
    await plane.setRoutes([{ name: "cmp", routes: [{ host: HOST, service: "up", ports: [bollardUp.port] }] }]);
    const [n, b] = await Promise.all([rawExchange(nginxPort, c.bytes, c.waitMs ?? 3_000), rawExchange(plane.httpPort, c.bytes, c.waitMs ?? 3_000)]);
    const seen = (u: LoggingUpstream) => c.look?.(u) ?? (u.targets.length === 0 ? "nothing" : u.targets.join(" "));
    const status = (raw: string) => (raw === "" ? "closed" : String(statusOf(raw) || raw.slice(0, 12)));
    rows.push(`| ${c.name} | ${status(n)} · ${seen(nginxUp)} | ${status(b)} · ${seen(bollardUp)} |`);
  } finally {
    const exited = new Promise((r) => nginx.once("exit", r));
    nginx.kill("SIGTERM");
    await exited;
    await plane.stop();
    await nginxUp.close();
    await bollardUp.close();
  }
}
await rm(dir, { recursive: true, force: true });
process.stdout.write(`| input | nginx: answer · upstream saw | Bollard: answer · upstream saw |\n|---|---|---|\n${rows.join("\n")}\n`);
