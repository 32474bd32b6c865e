// nginx as the reference and as the fast backend: started by us in the foreground from our own config in a
// private prefix directory, on loopback, stopped by PID — never the system service.
import { mkdir, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { type Started, startProcess, waitUntil } from "./proc.ts";
import type { Scope } from "./scope.ts";

export const NGINX = "/usr/sbin/nginx";

export interface NginxOptions {
  name: string;
  dir: string;
  workers: number;
  cpus?: string;
  /** the http{} body: upstreams and servers */
  http: string;
  port: number;
}

function renderConfig(prefix: string, workers: number, http: string): string {
  // One worker runs without a master so the process we pin and measure is the one doing the work.
  return `daemon off;
master_process ${workers > 1 ? "on" : "off"};
worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${http}
}
`;
}

export async function startNginx(scope: Scope, opts: NginxOptions): Promise<Started & { configPath: string }> {
  const prefix = join(opts.dir, opts.name);
  await mkdir(prefix, { recursive: true });
  const configPath = join(prefix, "nginx.conf");
  await writeFile(configPath, renderConfig(prefix, opts.workers, opts.http));
  const proc = startProcess(scope, {
    name: opts.name,
    command: NGINX,
    args: ["-c", configPath, "-p", prefix, "-e", join(prefix, "error.log")],
    logPath: join(prefix, "stdout.log"),
    ...(opts.cpus === undefined ? {} : { cpus: opts.cpus }),
  });
  await waitUntil(`${opts.name} listening on 127.0.0.1:${opts.port}`, () => canConnect(opts.port), 10_000);
  return { ...proc, configPath };
}

/** A backend that answers every request with a fixed 200 "ok\n". */
export const backendHttp = (port: number) => `  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / { return 200 "ok\\n"; }
  }`;

/**
 * nginx as a reverse proxy doing what an ingress does per request: Host passed through, the X-Forwarded-*
 * and X-Real-IP headers set, HTTP/1.1 with keepalive to the upstream.
 */
export const proxyHttp = (port: number, backendPort: number, https?: ProxyHttps) => `  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
${PROXY_LOCATION}
  }${
    https === undefined
      ? ""
      : `
  server {
    listen 127.0.0.1:${https.port} ssl http2 reuseport backlog=4096;
    ssl_certificate ${https.certPath};
    ssl_certificate_key ${https.keyPath};
    # the native plane's TLS: 1.2 and 1.3 (1.22's default stops at 1.2), its key exchange groups in its order
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    # a full handshake per new connection, as the native plane started with --no-tls-resumption
    ssl_session_tickets off;
    ssl_session_cache off;
${PROXY_LOCATION}
  }`
  }`;

/** An HTTPS server beside the plain one (TLS 1.2/1.3, HTTP/2 by ALPN, no session resumption), with the same proxying. */
export interface ProxyHttps {
  port: number;
  certPath: string;
  keyPath: string;
}

/** A location's proxying to `upstream backend`, with the ingress's header work. */
export const PROXY_PASS = `      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-ID $request_id;`;

const PROXY_LOCATION = `    location / {
${PROXY_PASS}
    }`;

export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** nginx's location doing what the five annotations of lib/policies.ts ask, as ingress-nginx would render them (in spirit: no Lua). */
const POLICY_LOCATION = `    location ~* "^/(.*)" {
      allow 10.0.0.0/8;
      allow 127.0.0.0/8;
      allow 192.168.0.0/16;
      deny all;
      limit_req zone=bench burst=5000000 nodelay;
      set $cors "";
      if ($http_origin = "https://app.bench.local") { set $cors "true"; }
      if ($request_method = "OPTIONS") { set $cors "\${cors}options"; }
      if ($cors = "trueoptions") { return 204; }
      add_header Access-Control-Allow-Origin $http_origin always;
      add_header Access-Control-Allow-Credentials true always;
      add_header Access-Control-Allow-Methods "GET, PUT, POST, DELETE, PATCH, OPTIONS" always;
      add_header Access-Control-Allow-Headers "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization" always;
      add_header Access-Control-Max-Age 1728000 always;
      add_header X-Bench policy always;
      rewrite "(?i)^/(.*)" /$1 break;
${PROXY_PASS}
    }`;

/** The http{} body of nginx with the five policies on its only location. */
export const policyHttp = (port: number, backendPort: number) => `  limit_req_zone $binary_remote_addr zone=bench:10m rate=1000000r/s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
${POLICY_LOCATION}
  }`;
