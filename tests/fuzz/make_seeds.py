#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; rerun after changing this file).

Each seed is a small valid input in the target's input format (see the comment at the top of each
<target>_fuzz.cpp): the fuzzer starts from them instead of discovering the formats from nothing.
Seed files are named after what they hold; inputs that once crashed a target are kept next to them
as regress-*, written by hand, never by this script.

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py   (needs python3-dnspython for the DNS seeds)
"""
import base64
import ssl
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REPO = HERE.parents[1]


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def crlf(text):
    return text.replace("\n", "\r\n").encode()


# --- http1_request: [read size - 1][relay size - 1] client bytes ------------------------------------
def http1_seeds():
    def seed(name, raw, read=255, relay=63):
        write("http1_request", name, bytes([read, relay]) + raw)

    seed("get-origin-form", crlf("GET /a/b?x=1 HTTP/1.1\nHost: allowed.test\nUser-Agent: curl/7.88\nAccept: */*\n\n"))
    seed("get-absolute-form", crlf("GET http://allowed.test:8080/p%20q?z HTTP/1.1\nHost: other.test\n\n"))
    seed("post-content-length", crlf("POST /sink HTTP/1.1\nHost: allowed.test:443\nContent-Length: 11\n"
                                     "Content-Type: text/plain\n\n") + b"hello world", read=7, relay=4)
    seed("post-chunked-trailers", crlf("POST /up HTTP/1.1\nHost: allowed.test\nTransfer-Encoding: chunked\n"
                                       "TE: trailers\nTrailer: X-Sum\n\n5;ext=1\nhello\n6\n world\n0\n"
                                       "X-Sum: 42\n\n"), read=3, relay=2)
    seed("pipelined-keep-alive", crlf("GET /1 HTTP/1.1\nHost: allowed.test\n\nHEAD /2 HTTP/1.1\n"
                                      "Host: allowed.test\nConnection: keep-alive\n\n"
                                      "GET /3 HTTP/1.0\nHost: allowed.test\n\n"))
    seed("websocket-upgrade", crlf("GET /ws HTTP/1.1\nHost: allowed.test\nUpgrade: websocket\n"
                                   "Connection: keep-alive, Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
                                   "Sec-WebSocket-Version: 13\n\n"))
    seed("hop-by-hop", crlf("PUT /x HTTP/1.1\nHost: allowed.test\nConnection: X-Drop, close\nX-Drop: 1\n"
                            "Keep-Alive: timeout=5\nProxy-Authorization: Basic dTpw\nProxy-Connection: keep-alive\n"
                            "Expect: 100-continue\nContent-Length: 3\n\nabc"))
    seed("dot-segments", crlf("GET /a/%2e%2E/b HTTP/1.1\nHost: allowed.test\n\n"))
    seed("ipv6-host", crlf("OPTIONS /x HTTP/1.1\nHost: [::1]:8443\n\n"))


# --- http1_response: [read size - 1][relay size - 1][flags: bit 0 = HEAD request] origin bytes -----
def http1_response_seeds():
    def seed(name, raw, read=255, relay=63, head=False):
        write("http1_response", name, bytes([read, relay, 1 if head else 0]) + raw)

    seed("content-length", crlf("HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\n") + b"hello")
    seed("chunked-trailers", crlf("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTrailer: X-Sum\n\n"
                                  "5;a=b\nhello\n0\nX-Sum: 1\n\n"), read=4, relay=3)
    seed("close-delimited", crlf("HTTP/1.0 200 OK\nConnection: close\n\n") + b"until the end")
    seed("interim-then-final", crlf("HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </a>\n\n"
                                    "HTTP/1.1 204 No Content\nX-Drop: 1\nConnection: X-Drop\n\n"))
    seed("head-response", crlf("HTTP/1.1 200 OK\nContent-Length: 1000\nKeep-Alive: timeout=5\n\n"), head=True)
    seed("switching-protocols", crlf("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n"
                                     "Connection: Upgrade\n\n"))


# --- tunnel_connect / socks5: [read size - 1] client bytes ------------------------------------------
def socks_request(cmd, atyp, addr, port):
    if atyp == 3:
        addr = bytes([len(addr)]) + addr
    return bytes([5, cmd, 0, atyp]) + addr + struct.pack(">H", port)


def tunnel_seeds():
    def seed(target, name, raw, read=255):
        write(target, name, bytes([read]) + raw)

    seed("tunnel_connect", "connect", crlf("CONNECT allowed.test:443 HTTP/1.1\nHost: allowed.test:443\n"
                                           "Proxy-Authorization: Basic dTpw\n\n") + b"\x16\x03\x01")
    seed("tunnel_connect", "connect-ipv6", crlf("CONNECT [::1]:8443 HTTP/1.1\nHost: [::1]:8443\n\n"), read=5)
    seed("tunnel_connect", "connect-no-port", crlf("CONNECT Allowed.Test. HTTP/1.1\n\n"))
    seed("tunnel_connect", "get-is-405", crlf("GET http://allowed.test/ HTTP/1.1\nHost: allowed.test\n\n"))
    seed("tunnel_connect", "socks5-domain", b"\x05\x01\x00" + socks_request(1, 3, b"allowed.test", 443))

    socks = {
        "domain": b"\x05\x01\x00" + socks_request(1, 3, b"allowed.test", 443),
        "ipv4": b"\x05\x02\x02\x00" + socks_request(1, 1, bytes([127, 0, 0, 2]), 8080),
        "ipv6": b"\x05\x01\x00" + socks_request(1, 4, bytes(15) + b"\x01", 443),
        "bind": b"\x05\x01\x00" + socks_request(2, 1, bytes([10, 0, 0, 1]), 80),
        "no-acceptable-method": b"\x05\x01\x02",
        "unknown-atyp": b"\x05\x01\x00\x05\x01\x00\x09\x00",
        "pipelined": b"\x05\x01\x00" + socks_request(1, 3, b"allowed.test", 80)
                     + crlf("GET / HTTP/1.1\nHost: allowed.test\n\n"),
    }
    for name, raw in socks.items():
        seed("socks5", name, raw)
    seed("socks5", "byte-by-byte", socks["domain"], read=0)


# --- client_hello: [read size - 1, 2 bytes big-endian] bytes from the client ------------------------
def client_hello(server_hostname, **ctx_opts):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in ctx_opts.items():
        setattr(ctx, k, v)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def split_records(hello, at):
    """The same ClientHello in two TLS records (the proxy must reassemble them)."""
    header, body = hello[:5], hello[5:]
    first, second = body[:at], body[at:]
    return (header[:3] + struct.pack(">H", len(first)) + first
            + header[:3] + struct.pack(">H", len(second)) + second)


def client_hello_seeds():
    def seed(name, raw, read=0xFFFF):
        write("client_hello", name, struct.pack(">H", read - 1) + raw)

    tls13 = client_hello("allowed.test")
    seed("tls13-sni", tls13)
    seed("tls12-sni", client_hello("api.allowed.test", maximum_version=ssl.TLSVersion.TLSv1_2))
    seed("no-sni", client_hello(None))
    seed("two-records", split_records(tls13, 40))
    seed("small-reads", tls13, read=7)
    seed("long-sni", client_hello("a" * 60 + "." + "b" * 60 + ".test"))


# --- h2_headers: NUL-separated name, value pairs ---------------------------------------------------
def h2_seeds():
    def seed(name, pairs):
        write("h2_headers", name, "\0".join(x for p in pairs for x in p))

    seed("get", [(":method", "GET"), (":scheme", "https"), (":authority", "allowed.test"),
                 (":path", "/a?b=1"), ("user-agent", "nghttp2/1.52"), ("accept", "*/*")])
    seed("post-cookies-te", [(":method", "POST"), (":scheme", "https"), (":authority", "allowed.test:8443"),
                             (":path", "/sink"), ("content-length", "5"), ("cookie", "a=1"),
                             ("cookie", "b=2"), ("te", "trailers"), ("content-type", "application/grpc")])
    seed("host-and-authority", [(":method", "GET"), (":scheme", "https"), (":authority", "allowed.test"),
                                (":path", "/"), ("host", "Allowed.Test.")])
    seed("connection-specific", [(":method", "GET"), (":scheme", "http"), (":authority", "allowed.test"),
                                 (":path", "/x"), ("connection", "keep-alive, x-drop"), ("x-drop", "1"),
                                 ("keep-alive", "5"), ("transfer-encoding", "chunked"), ("upgrade", "h2c"),
                                 ("proxy-authorization", "Basic dTpw"), ("te", "gzip")])
    seed("host-only", [(":method", "DELETE"), (":scheme", "https"), ("host", "allowed.test:443"),
                       (":path", "/%2e%2e/x")])


# --- secrets_scan: [mode] NUL-separated fields ----------------------------------------------------
def secrets_seeds():
    def seed(name, mode, fields):
        write("secrets_scan", name, bytes([mode]) + "\0".join(fields).encode())

    seed("helpers", 0, ["ptok", "s3cr&t =", "a=ptok&b=p%74ok&c&d=x+ptok", "key", "v a+l", "{{ .Value }}"])
    seed("helpers-basic", 0, ["ptok", "real", "Basic " + base64.b64encode(b"user:ptok").decode(), "",
                              "", '{{- base64 "u:" .Value -}}'])
    seed("stream-replacer", 1, ["\x07", "secret", "ptok", "sec", "[S]", "cret-2", "#",
                                "x secret y secsecret cret-2 secre"])
    seed("replace-everywhere", 2, ["/v1/ptok/x%20y", "key=ptok&a=b&p%74ok=1", "body ptok ptok",
                                   "Authorization", "Bearer ptok", "X-Api-Key", "ptok",
                                   "Cookie", "s=ptok", "X-Keep-Me", "1", "X-Dropped", "ptok"])
    seed("replace-basic", 6, ["/", "", "", "Authorization",
                              "Basic " + base64.b64encode(b"user:ptok").decode()])
    seed("inject", 3, ["/x", "key=old&key=dup&z", "", "Authorization", "Bearer old"])
    seed("crlf-secret", 4, ["/ptok", "q=ptok", "", "X-Api-Key", "ptok"])
    seed("required-header", 5, ["/", "", "", "X-Required", "reqtok"])


# --- config: YAML text ----------------------------------------------------------------------------
def config_seeds():
    write("config", "example", (REPO / "examples" / "iron-proxy.yaml").read_bytes())
    write("config", "minimal", "proxy:\n  http_listen: \"127.0.0.1:0\"\ntls:\n  ca_cert: ca.crt\n  ca_key: ca.key\n")
    write("config", "everything", """dns:
  enabled: true
  listen: "127.0.0.1:5353"
  proxy_ip: 10.0.0.1
  upstream_resolver: "127.0.0.1:53"
  passthrough: ["*.internal", "api.*.net"]
  records:
    - {name: db.internal, type: A, value: 10.1.2.3}
    - {name: v6.internal, type: AAAA, value: "2001:db8::1"}
    - {name: alias.internal, type: CNAME, value: db.internal}
proxy:
  http_listen: ":8080"
  https_listen: ":8443"
  tunnel_listen: ":8888"
  upstream_deny_cidrs: ["169.254.169.254/32", "10.0.0.0/8", "fd00::/8"]
  upstream_response_header_timeout: 1m30s
  client_header_timeout: 2s
  client_idle_timeout: 1h
  max_request_body_bytes: 0x100000
  max_response_body_bytes: 1_000_000
  oversize_body: forward
  upstream_proxy: {http_proxy: "http://127.0.0.1:3128", no_proxy: "localhost,.internal"}
tls:
  mode: sni-only
  ca_cert: /tmp/ca.crt
  ca_key: /tmp/ca.key
  cert_cache_size: 100
  leaf_cert_expiry_hours: 24
log: {level: debug, audit_path: /tmp/audit.jsonl}
metrics: {listen: "127.0.0.1:0"}
management: {listen: "127.0.0.1:0", api_key_env: MY_KEY}
transforms:
  - name: allowlist
    config:
      domains: ["allowed.test", "*.example.com"]
      cidrs: ["127.0.0.2/32"]
      rules:
        - {host: "api.test", methods: [GET, POST], paths: ["/v1/*"]}
        - {cidr: "10.0.0.0/8"}
      warn: false
  - name: annotate
    config:
      annotations:
        - rules: [{host: "*"}]
          headers: [x-request-id]
  - name: body_capture
    config:
      rules: [{host: "*.example.com"}]
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: API_TOKEN}
          rules: [{host: api.test}]
          replace: {proxy_value: ptok, match_headers: [authorization], match_query: true, match_body: true}
        - source: {type: control_plane, value: '{"k": "v"}', json_key: k, name: cp}
          rules: [{host: "*.example.com", paths: ["/x/*"]}]
          inject: {header: Authorization, formatter: 'Bearer {{ .Value }}'}
  - name: header_allowlist
    config:
      headers: [content-type, authorization, /^x-/]
""")
    write("config", "seed-era-secrets", """transforms:
  - name: secrets
    config:
      source: env
      secrets:
        - var: OPENAI_KEY
          proxy_value: sk-proxy
          match_headers: none
          match_body: false
          hosts: [{name: api.openai.com}, {cidr: 10.0.0.0/8}]
""")
    write("config", "empty", "")


# --- dns_codec: one DNS message -------------------------------------------------------------------
def dns_seeds():
    import dns.edns
    import dns.message
    queries = {
        "a-allowed": dns.message.make_query("allowed.test.", "A"),
        "aaaa": dns.message.make_query("v6.internal.", "AAAA"),
        "static-record": dns.message.make_query("api.internal.", "A"),
        "cname": dns.message.make_query("alias.internal.", "A"),
        "passthrough": dns.message.make_query("x.internal.corp.", "TXT"),
        "edns": dns.message.make_query("many.test.", "AAAA", use_edns=0, payload=4096),
        "any": dns.message.make_query("allowed.test.", "ANY"),
    }
    for name, q in queries.items():
        q.id = 0x1234
        write("dns_codec", name, q.to_wire())


if __name__ == "__main__":
    http1_seeds()
    http1_response_seeds()
    tunnel_seeds()
    client_hello_seeds()
    h2_seeds()
    secrets_seeds()
    config_seeds()
    dns_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
