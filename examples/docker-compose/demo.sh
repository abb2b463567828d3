#!/bin/sh
# The demo client (seed 001): five requests with no proxy settings at all. DNS points at iron-proxy
# (compose `dns: [172.20.0.2]`), so every name resolves to the proxy and the requests go through it.
# With the argument "locked" (service locked-client, nftables loaded), it also tries to go around
# the proxy and shows that this fails.
set -u
CA=/certs/ca.crt
c() { echo "+ curl $*"; curl -sS --max-time 20 --cacert "$CA" -o /dev/stdout -w '\n=> HTTP %{http_code}\n' "$@"; echo; }

echo "== 1. allowed request";              c https://httpbin.org/get
echo "== 2. blocked request (403)";        c https://example.com/
echo "== 3. secret swap in Authorization"; c -H "Authorization: Bearer proxy-openai-abc123" https://httpbin.org/headers
echo "== 4. secret swap in a custom header"; c -H "X-Internal: proxy-internal-tok" https://httpbin.org/headers
echo "== 5. secret swap in the query";     c "https://httpbin.org/get?token=proxy-openai-abc123&q=hello"

if [ "${1:-}" = "locked" ]; then
  echo "== 6. hardcoded IP (must fail: dropped by nftables)"
  curl -sS --connect-timeout 5 -o /dev/null https://1.1.1.1/ && echo "UNEXPECTED: reached 1.1.1.1" || echo "blocked, as intended"
  echo "== 7. own resolver (must fail: dropped by nftables)"
  dig +time=2 +tries=1 @8.8.8.8 example.com && echo "UNEXPECTED: 8.8.8.8 answered" || echo "blocked, as intended"
  echo "== 8. what DNS says (every name is the proxy)"
  dig +short example.com httpbin.org
fi
echo "done; see the audit records: docker compose logs proxy"
