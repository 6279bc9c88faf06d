#!/usr/bin/env bash
# Native TLS (--web.config.file's tls_server_config), checked with curl and
# openssl s_client against the real exporter (simulated mode: no probe, no
# root), on loopback only, with certificates made now by a CA of the test's
# own:
#   - TLS 1.2 and 1.3, each with the certificate verified; plain HTTP fails;
#   - cipher_suites: the suite listed is accepted, another refused;
#   - certificate rotation: a new certificate alone (the old key) is not
#     served and counts a failure; with its key it is served at the next
#     handshake, counts a success and updates the expiry gauge;
#   - mTLS (RequireAndVerifyClientCert, client_allowed_sans): a client of the
#     CA with an allowed SAN gets 200; no certificate, another CA's, or a SAN
#     not allowed get nothing;
#   - min_version TLS13 refuses TLS 1.2; paths relative to the config file;
#     an IPv6 listen address ([::1]) where civetweb and the host have IPv6.
# TLS is expected with Debian 12's civetweb 1.15 and Debian 13's 1.16 alike
# (exporter/web/civetweb_tls/ says how). IPv6 is expected where the
# installed libcivetweb1 is 1.16 or later (Debian 12's is built without it),
# decided from the package, not from the exporter: where it is not, the test
# checks that the exporter refuses [::1] with an error that says what to do.
#
# The exporter runs as root in CI and so drops to nobody: the files are made
# readable by everyone, as a key must be readable by the user the exporter
# runs as for a renewed one to be read.
#
# usage: tls_native_test.sh EXPORTER_BINARY DATABASE
set -euo pipefail

exporter_bin=$(realpath "$1")
database=$(realpath "$2")
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tls_native_test.XXXXXX)
chmod 0755 "$work"
umask 022
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
check() {  # check DESCRIPTION COMMAND...: passes when the command succeeds
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

for tool in openssl curl python3 dpkg-query; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: scripts/test installs it" >&2; exit 1; }
done

# --- Certificates -----------------------------------------------------------
cd "$work"
# make_ca NAME
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
# make_cert NAME CA SAN [DAYS]: a key and a certificate signed by CA.
make_cert() {
  local name=$1 ca=$2 san=$3 days=${4:-1}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$san" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -days "$days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
}
make_ca ca
make_ca other-ca
server_san="DNS:localhost,IP:127.0.0.1,IP:::1"
make_cert server ca "$server_san" 1
make_cert renewed ca "$server_san" 2
make_cert scraper ca "DNS:prometheus.example"
make_cert stranger other-ca "DNS:prometheus.example"
make_cert intruder ca "DNS:intruder.example"
chmod 0644 ./*.key
# The files the exporter serves; rotation replaces them.
mkdir tls
cp server.crt tls/cert.pem
cp server.key tls/key.pem

serial() { openssl x509 -noout -serial -in "$1" | cut -d= -f2; }
not_after() { date -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }

# --- The exporter -------------------------------------------------------------
# start_exporter NAME LISTEN CONFIG: starts it; sets port to the port it bound.
start_exporter() {
  local name=$1 listen=$2 config=$3
  "$exporter_bin" --connections.source=simulated --web.listen-address="$listen" \
    --geoip.database="$database" --web.config.file="$config" 2>"$work/$name.log" &
  pids+=($!)
  port=$(python3 "$repo/tests/support/exporter_process.py" port "$work/$name.log" \
    --pid "${pids[-1]}" --timeout 15) || {
    echo "exporter ($name) did not start:" >&2
    cat "$work/$name.log" >&2
    exit 1
  }
}

# curl_tls HOST PORT PATH [curl options...]: prints the body, then the status.
curl_tls() {
  local host=$1 port=$2 path=$3
  shift 3
  curl --silent --noproxy '*' --max-time 10 --cacert "$work/ca.crt" -w '\n%{http_code}\n' \
    "$@" "https://$host:$port$path" 2>/dev/null || true
}
status_of() { tail -n1 <<<"$1"; }

# s_client PORT [options...]: the handshake's summary (protocol, verify result,
# the certificate's serial); fails if the handshake fails.
s_client() {
  local port=$1
  shift
  local out
  out=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
    -CAfile "$work/ca.crt" -verify_return_error "$@" </dev/null 2>&1) || return 1
  # "New, TLSv1.3, Cipher is ...": the session's summary later in the output
  # waits for TLS 1.3's session tickets, which may come after s_client left.
  grep -E '^New, |^ *Verify return code' <<<"$out" | sed 's/^ *//' | sort -u
  openssl x509 -noout -serial <<<"$out" 2>/dev/null | sed 's/^/served /'
}

# --- 1. TLS 1.2 and 1.3, cipher suites, rotation --------------------------------
cat >plain.yml <<EOF
# exporter-toolkit's form: paths relative to this file, a flow sequence.
tls_server_config:
  cert_file: tls/cert.pem
  key_file: "tls/key.pem"
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
EOF
start_exporter plain 127.0.0.1:0 "$work/plain.yml"
echo "exporter with TLS on 127.0.0.1:$port"

for v in 1.2 1.3; do
  out=$(curl_tls 127.0.0.1 "$port" /metrics --tlsv"$v" --tls-max "$v")
  check "curl, TLS $v, certificate verified: 200 with metrics" \
    bash -c '[ "$(tail -n1 <<<"$1")" = 200 ] && grep -q "^ebpf_geoip_build_info{" <<<"$1"' _ "$out"
  summary=$(s_client "$port" "-tls${v/./_}" || true)
  check "openssl s_client -tls${v/./_}: protocol TLSv$v, verified" \
    bash -c 'grep -q "^New, TLSv$2, " <<<"$1" && grep -q "^Verify return code: 0 (ok)" <<<"$1"' \
    _ "$summary" "$v"
done
if s_client "$port" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 >/dev/null; then
  pass "TLS 1.2 with the suite listed (ECDHE-ECDSA-AES128-GCM-SHA256)"
else
  fail "TLS 1.2 with the suite listed (ECDHE-ECDSA-AES128-GCM-SHA256) refused"
fi
if s_client "$port" -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384 >/dev/null; then
  fail "TLS 1.2 with a suite not listed (ECDHE-ECDSA-AES256-GCM-SHA384) accepted"
else
  pass "TLS 1.2 with a suite not listed (ECDHE-ECDSA-AES256-GCM-SHA384) refused"
fi
plain_out=$(curl --silent --noproxy '*' --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
check "plain HTTP to the TLS port gets no metrics" bash -c '! grep -q ebpf_geoip <<<"$1"' _ "$plain_out"

metric() {  # metric NAME_AND_LABELS: its value in /metrics, or "absent"
  curl_tls 127.0.0.1 "$port" /metrics | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print "absent" }'
}
served_serial() { s_client "$port" -tls1_3 | sed -n 's/^served serial=//p'; }

check "before rotation: the first certificate is served" \
  test "$(served_serial)" = "$(serial server.crt)"
# A renewal that writes the certificate first: the old key does not match it.
cp renewed.crt tls/cert.pem.new && mv tls/cert.pem.new tls/cert.pem
check "new certificate with the old key: the first one still served" \
  test "$(served_serial)" = "$(serial server.crt)"
check "and counted: reloads{result=\"failure\"} 1" \
  test "$(metric 'ebpf_geoip_tls_certificate_reloads_total{result="failure"}')" = 1
cp renewed.key tls/key.pem.new && mv tls/key.pem.new tls/key.pem
check "with its key: the renewed certificate is served at the next handshake" \
  test "$(served_serial)" = "$(serial renewed.crt)"
check "reloads{result=\"success\"} 1" \
  test "$(metric 'ebpf_geoip_tls_certificate_reloads_total{result="success"}')" = 1
expiry=$(metric ebpf_geoip_tls_certificate_expiry_timestamp_seconds)
check "expiry gauge is the renewed certificate's notAfter ($expiry)" \
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))' "$expiry" "$(not_after renewed.crt)"
grep -q "serving the renewed certificate" plain.log && pass "the log says the renewed certificate is served" ||
  fail "no log line about the renewed certificate"

# --- 2. mTLS -------------------------------------------------------------------
cat >mtls.yml <<EOF
tls_server_config:
  cert_file: $work/server.crt
  key_file: $work/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  client_allowed_sans:
    - prometheus.example
EOF
start_exporter mtls 127.0.0.1:0 "$work/mtls.yml"
for v in 1.2 1.3; do
  out=$(curl_tls 127.0.0.1 "$port" /metrics --tlsv"$v" --tls-max "$v" --cert scraper.crt --key scraper.key)
  check "mTLS, TLS $v: a client of the CA with an allowed SAN gets 200" test "$(status_of "$out")" = 200
  for who in none stranger intruder; do
    opts=()
    [ $who = none ] || opts=(--cert "$who.crt" --key "$who.key")
    out=$(curl_tls 127.0.0.1 "$port" /metrics --tlsv"$v" --tls-max "$v" "${opts[@]}")
    check "mTLS, TLS $v: $who (no certificate / another CA / SAN not allowed) gets nothing" \
      bash -c '[ "$(tail -n1 <<<"$1")" = 000 ] && ! grep -q ebpf_geoip <<<"$1"' _ "$out"
  done
done

# --- 3. min_version TLS13, over IPv6 where there is IPv6 ------------------------
cat >modern.yml <<EOF
tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS13}
EOF
host=127.0.0.1 listen=127.0.0.1:0
civetweb=$(dpkg-query -W -f='${Version}' libcivetweb1 2>/dev/null || echo none)
if ! [ -e /proc/net/if_inet6 ] || ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
  echo "note: no IPv6 loopback on this host: the TLS 1.3-only server listens on IPv4"
elif dpkg --compare-versions "$civetweb" ge 1.16; then
  host='[::1]' listen='[::1]:0'
else
  echo "libcivetweb1 $civetweb is built without IPv6: checking the exporter says so"
  set +e
  timeout 20 "$exporter_bin" --connections.source=simulated --web.listen-address='[::1]:0' \
    --geoip.database="$database" --web.config.file="$work/modern.yml" 2>ipv6.log
  status=$?
  set -e
  check "[::1]:0 refused at start-up with exit 1 (got $status)" test "$status" = 1
  check "the error says civetweb is built without IPv6 and what to do" \
    grep -q 'is IPv6, and .*built without IPv6: run it on Debian 13, or listen on an IPv4' ipv6.log
fi
start_exporter modern "$listen" "$work/modern.yml"
out=$(curl_tls "$host" "$port" /metrics --tlsv1.3)
check "min_version TLS13 on $listen: TLS 1.3 gets 200" test "$(status_of "$out")" = 200
out=$(curl_tls "$host" "$port" /metrics --tlsv1.2 --tls-max 1.2)
check "min_version TLS13: TLS 1.2 refused" test "$(status_of "$out")" = 000
grep -q "live map: https://" modern.log && pass "the live map's URL is https" ||
  fail "the live map's URL in the log is not https"

if [ $failures != 0 ]; then
  for log in plain mtls modern; do echo "--- $log.log"; cat "$work/$log.log"; done
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo PASS
