// The five ingress-nginx annotations of the `policies` bench part, and nginx doing the same per request.
const P = "nginx.ingress.kubernetes.io";

export const BENCH_POLICY_ANNOTATIONS: Record<string, string> = {
  // 1. a source allow-list (the client is 127.0.0.1)
  [`${P}/allowlist-source-range`]: "10.0.0.0/8, 127.0.0.0/8, 192.168.0.0/16",
  // 2. a rate limit per client address, never reached
  [`${P}/limit-rps`]: "1000000",
  // 3. CORS for one origin
  [`${P}/enable-cors`]: "true",
  [`${P}/cors-allow-origin`]: "https://app.bench.local",
  // 4. a regex path with a rewrite of the upstream path
  [`${P}/use-regex`]: "true",
  [`${P}/rewrite-target`]: "/$1",
  // 5. a response header from a ConfigMap
  [`${P}/custom-headers`]: "bench/bench-headers",
};

/** nginx's location doing the same five things, as ingress-nginx would render them (in spirit: no Lua). */
export const nginxPolicyLocation = `    location ~* "^/(.*)" {
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
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-ID $request_id;
    }`;

/** The http{} body of nginx with the five policies on its only location. */
export const nginxPolicyHttp = (port: number, backendPort: number) => `  limit_req_zone $binary_remote_addr zone=bench:10m rate=1000000r/s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
${nginxPolicyLocation}
  }`;
