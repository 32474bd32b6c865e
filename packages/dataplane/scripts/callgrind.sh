#!/usr/bin/env bash
# Instructions per proxied request (callgrind): the native plane (bench/lib/dataplane-main.ts, one worker, the
# bench's one-route table) in front of an nginx backend answering 200 "ok", while `h2load --h1 -c64 -n$N` runs;
# counting only during the load (callgrind_control toggles instrumentation), so start-up is not in the figure.
# --nginx: the same for nginx as the proxy, with the header work of bench/lib/nginx.ts's proxyHttp.
# --policies: the native plane's route carries the five annotations of the `policies` bench part (bench/lib/policies.ts),
# and the requests an allowed Origin.
#   bash packages/dataplane/scripts/callgrind.sh [--nginx | --policies] [requests]   (from the repository root, after build:dataplane)
set -euo pipefail
PROXY_KIND=native
PLANE_ARGS=()
LOAD_ARGS=()
TARGET=/
if [[ "${1:-}" == "--nginx" ]]; then
  PROXY_KIND=nginx
  shift
elif [[ "${1:-}" == "--policies" ]]; then
  PLANE_ARGS=(--policies)
  LOAD_ARGS=(-H "origin: https://app.bench.local")
  TARGET="/api/items?page=2"
  shift
fi
N=${1:-20000}
DIR=$(mktemp -d /tmp/callgrind.XXXXXX)
BACKEND=18481
PROXY=18480
cleanup() {
  [[ -n "${PLANE:-}" ]] && kill "$PLANE" 2>/dev/null || true
  [[ -n "${NGINX_PID:-}" ]] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -z "${KEEP:-}" ]] && rm -rf "$DIR" || true
}
trap cleanup EXIT
mkdir -p "$DIR/backend"
cat > "$DIR/backend/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $DIR/backend/nginx.pid; error_log $DIR/backend/error.log warn;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $DIR/backend; proxy_temp_path $DIR/backend; fastcgi_temp_path $DIR/backend;
  uwsgi_temp_path $DIR/backend; scgi_temp_path $DIR/backend; keepalive_requests 1000000; keepalive_timeout 75s;
  server { listen 127.0.0.1:$BACKEND reuseport backlog=4096; location / { return 200 "ok\n"; } } }
CONF
nginx -c "$DIR/backend/nginx.conf" -p "$DIR/backend" -e "$DIR/backend/error.log" &
NGINX_PID=$!
if [[ $PROXY_KIND == native ]]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$DIR/cg.out" \
    "$(npx node -p process.execPath)" bench/lib/dataplane-main.ts native $PROXY $BACKEND --workers 1 "${PLANE_ARGS[@]}" > "$DIR/plane.log" 2>&1 &
else
  mkdir -p "$DIR/proxy"
  cat > "$DIR/proxy/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $DIR/proxy/nginx.pid; error_log $DIR/proxy/error.log warn;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $DIR/proxy; proxy_temp_path $DIR/proxy; fastcgi_temp_path $DIR/proxy;
  uwsgi_temp_path $DIR/proxy; scgi_temp_path $DIR/proxy; keepalive_requests 1000000; keepalive_timeout 75s;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 256; }
  server { listen 127.0.0.1:$PROXY reuseport backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host; proxy_set_header X-Forwarded-Port \$server_port;
      proxy_set_header X-Request-ID \$request_id; } } }
CONF
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$DIR/cg.out" \
    nginx -c "$DIR/proxy/nginx.conf" -p "$DIR/proxy" -e "$DIR/proxy/error.log" > "$DIR/plane.log" 2>&1 &
fi
PLANE=$!
for _ in $(seq 1 600); do (echo > /dev/tcp/127.0.0.1/$PROXY) 2>/dev/null && break; sleep 0.5; done
h2load --h1 -c64 -n2000 -H ":authority: bench.local" "${LOAD_ARGS[@]}" "http://127.0.0.1:$PROXY$TARGET" > /dev/null # warm the pool
callgrind_control -i on "$PLANE" > /dev/null
h2load --h1 -c64 -n"$N" -H ":authority: bench.local" "${LOAD_ARGS[@]}" "http://127.0.0.1:$PROXY$TARGET" | grep -E "^requests:|status codes:"
callgrind_control -i off "$PLANE" > /dev/null
callgrind_control -d "$PLANE" > /dev/null
sleep 1
IR=$(cat "$DIR"/cg.out* | awk '/^totals:/ { s += $2 } END { print s }')
echo "instructions: $IR total, $((IR / N)) per request"
