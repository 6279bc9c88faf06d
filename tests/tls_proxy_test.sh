#!/usr/bin/env bash
# TLS through the shipped proxy configurations, on loopback only: a
# self-signed certificate made now, the exporter in simulated mode (no probe,
# no root) with Basic authentication, and in front of it stunnel4 with
# deploy/tls/stunnel.conf and, when an nginx binary is at hand, nginx with
# deploy/tls/nginx.conf. curl checks HTTPS answers with the metrics, that
# credentials still count, and that plain HTTP to the TLS port gets nothing.
#
# usage: tls_proxy_test.sh EXPORTER_BINARY DATABASE
#   GEOIP_NGINX=/path/to/nginx selects nginx; default: nginx from PATH, and
#   without one the nginx half is skipped (and says so).
set -euo pipefail

exporter_bin=$1
database=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tls_proxy_test.XXXXXX)
chmod 0755 "$work"  # stunnel drops to the stunnel4 user; it only needs to traverse
pids=()
failures=0

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

command -v stunnel4 >/dev/null || { echo "stunnel4 is not installed: apt-get install stunnel4" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is not installed: apt-get install openssl" >&2; exit 1; }

# A free loopback port (the kernel's choice; released just before use).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for something to listen on 127.0.0.1:$1.
wait_listening() {
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Replaces the one line of $1 that matches $2 (an extended regex) with $3;
# fails if not exactly one line matched, so a reshaped config fails loudly.
replace_line() {
  local file=$1 pattern=$2 replacement=$3
  local count
  count=$(grep -cE "$pattern" "$file" || true)
  [ "$count" = 1 ] || { echo "expected one line matching '$pattern' in $file, found $count" >&2; exit 1; }
  sed -i -E "s|$pattern.*|$replacement|" "$file"
}

# A certificate for 127.0.0.1 and localhost, valid for a day.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null
chmod 0600 "$work/server.key"

# bcrypt of "secret" at cost 4: the 401 and 200 below prove it verifies.
cat >"$work/web.yml" <<'EOF'
basic_auth_users:
  scraper: $2b$04$.KheYHIoOb58VLuNzwqau.DxaMGZNFSQCKgW85mCNVhNv16gzUWFu
EOF

"$exporter_bin" --connections.source=simulated --web.listen-address=127.0.0.1:0 \
  --geoip.database="$database" --web.config.file="$work/web.yml" 2>"$work/exporter.log" &
pids+=($!)
# Its start-up line (docs/API.md) names the port it bound.
exporter_port=$(python3 "$repo/tests/support/exporter_process.py" port "$work/exporter.log" \
  --pid "${pids[0]}" --timeout 15) || { echo "exporter did not start" >&2; exit 1; }
echo "exporter on 127.0.0.1:$exporter_port"

curl_tls() {  # curl_tls PORT PATH [curl options...]
  local port=$1 path=$2
  shift 2
  curl --silent --show-error --noproxy '*' --max-time 10 --cacert "$work/server.crt" \
    "$@" "https://127.0.0.1:$port$path"
}

# The checks every proxy must pass; $1 names it, $2 is its TLS port.
check_proxy() {
  local name=$1 port=$2 out code
  out=$(curl_tls "$port" /metrics -u scraper:secret -w '\n%{http_code} %{ssl_verify_result}') ||
    { fail "$name: HTTPS /metrics failed"; return; }
  code=$(tail -n1 <<<"$out")
  if [ "$code" = "200 0" ] && grep -q '^ebpf_geoip_build_info{' <<<"$out"; then
    pass "$name: HTTPS /metrics with credentials: 200, certificate verified, metrics served"
  else
    fail "$name: HTTPS /metrics answered '$code'"
  fi
  code=$(curl_tls "$port" /metrics -o /dev/null -w '%{http_code}') || true
  [ "$code" = 401 ] && pass "$name: HTTPS /metrics without credentials: 401" ||
    fail "$name: without credentials: '$code', not 401"
  code=$(curl_tls "$port" /metrics -u scraper:wrong -o /dev/null -w '%{http_code}') || true
  [ "$code" = 401 ] && pass "$name: HTTPS /metrics with a wrong password: 401" ||
    fail "$name: wrong password: '$code', not 401"
  code=$(curl_tls "$port" /-/healthy -o /dev/null -w '%{http_code}') || true
  [ "$code" = 200 ] && pass "$name: HTTPS /-/healthy without credentials: 200" ||
    fail "$name: /-/healthy: '$code', not 200"
  # TLS 1.2 with an ECDHE AEAD suite works; a CBC suite, which OpenSSL's
  # defaults would accept, does not.
  code=$(curl_tls "$port" /-/healthy --tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}') || true
  [ "$code" = 200 ] && pass "$name: TLS 1.2 (ECDHE, AEAD) accepted" || fail "$name: TLS 1.2: '$code'"
  if curl_tls "$port" /-/healthy --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA \
       -o /dev/null 2>/dev/null; then
    fail "$name: accepted the TLS 1.2 CBC suite ECDHE-ECDSA-AES128-SHA"
  else
    pass "$name: TLS 1.2 CBC suite (ECDHE-ECDSA-AES128-SHA) refused"
  fi
  # The live map's stream flows through: the first event arrives.
  out=$(curl_tls "$port" /api/v1/stream -u scraper:secret -N --max-time 3 2>/dev/null || true)
  grep -q '^data: ' <<<"$out" && pass "$name: live stream passes through" ||
    fail "$name: no event from /api/v1/stream through the proxy"
  # Plain HTTP to the TLS port fails: stunnel hangs up, nginx answers 400.
  code=$(curl --silent --noproxy '*' --max-time 5 -u scraper:secret -o "$work/plain.out" \
           -w '%{http_code}' "http://127.0.0.1:$port/metrics" 2>/dev/null) || code="no answer"
  if grep -q ebpf_geoip "$work/plain.out" 2>/dev/null; then
    fail "$name: plain HTTP to the TLS port got metrics"
  elif [ "$code" = "no answer" ] || [ "$code" = 000 ] || [ "$code" = 400 ]; then
    pass "$name: plain HTTP to the TLS port fails ($code)"
  else
    fail "$name: plain HTTP to the TLS port answered $code"
  fi
  rm -f "$work/plain.out"
}

# stunnel4 with the shipped configuration, pointed at this test's ports and files.
stunnel_port=$(free_port)
cp "$repo/deploy/tls/stunnel.conf" "$work/stunnel.conf"
replace_line "$work/stunnel.conf" '^accept = ' "accept = 127.0.0.1:$stunnel_port"
replace_line "$work/stunnel.conf" '^connect = ' "connect = 127.0.0.1:$exporter_port"
replace_line "$work/stunnel.conf" '^cert = ' "cert = $work/server.crt"
replace_line "$work/stunnel.conf" '^key = ' "key = $work/server.key"
if [ "$(id -u)" != 0 ]; then  # only root can change user
  sed -i -E '/^set(uid|gid) = /d' "$work/stunnel.conf"
fi
stunnel4 "$work/stunnel.conf" 2>"$work/stunnel.log" &
pids+=($!)
wait_listening "$stunnel_port" || { cat "$work/stunnel.log" >&2; exit 1; }
echo "stunnel $(stunnel4 -version 2>&1 | sed -n 's/^stunnel \([0-9.]*\).*/\1/p') on 127.0.0.1:$stunnel_port"
check_proxy stunnel "$stunnel_port"

# nginx, when there is one.
nginx_bin=${GEOIP_NGINX:-$(command -v nginx || true)}
if [ -z "$nginx_bin" ]; then
  echo "skipped: nginx (no nginx binary; set GEOIP_NGINX or install nginx)"
else
  nginx_port=$(free_port)
  cp "$repo/deploy/tls/nginx.conf" "$work/nginx-site.conf"
  replace_line "$work/nginx-site.conf" '^    listen 19443 ssl;' "    listen 127.0.0.1:$nginx_port ssl;"
  sed -i -E '/^    listen \[::\]:19443 ssl;/d' "$work/nginx-site.conf"
  replace_line "$work/nginx-site.conf" '^    ssl_certificate ' "    ssl_certificate $work/server.crt;"
  replace_line "$work/nginx-site.conf" '^    ssl_certificate_key ' "    ssl_certificate_key $work/server.key;"
  sed -i -E "s|proxy_pass http://127.0.0.1:19100;|proxy_pass http://127.0.0.1:$exporter_port;|" \
    "$work/nginx-site.conf"
  mkdir -p "$work/nginx"
  cat >"$work/nginx-main.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  include $work/nginx-site.conf;
}
EOF
  "$nginx_bin" -t -p "$work/nginx" -e stderr -c "$work/nginx-main.conf" 2>"$work/nginx-t.log" ||
    { cat "$work/nginx-t.log" >&2; fail "nginx -t rejects deploy/tls/nginx.conf"; }
  "$nginx_bin" -p "$work/nginx" -e stderr -c "$work/nginx-main.conf" 2>"$work/nginx.log" &
  pids+=($!)
  if wait_listening "$nginx_port"; then
    echo "$("$nginx_bin" -v 2>&1) on 127.0.0.1:$nginx_port"
    check_proxy nginx "$nginx_port"
  else
    cat "$work/nginx.log" >&2
    fail "nginx did not listen"
  fi
fi

kill -0 "${pids[0]}" 2>/dev/null || fail "the exporter died"
if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all TLS proxy checks passed"
