"""The hmac_sign transform: for every algorithm, key encoding, output encoding and timestamp format
the origin (the suite's echo upstream) receives headers whose HMAC the test recomputes with
Python's hmac over what the origin actually received; client values of those headers are
replaced; a body that is not whole is refused (413 when over the cap, 400 when chunked unless
allow_chunked_body); credential, template and key failures answer the Go proxy's JSON bodies and
statuses with their annotations; the signing key never reaches a log line, an audit record or a
response."""
import base64
import hashlib
import hmac
import json
import re
import time

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform

pytestmark = pytest.mark.timeout(90)

KEY_VAR = "HMAC_E2E_KEY"
API_KEY_VAR = "HMAC_E2E_API_KEY"
RAW_KEY = "hmac-e2e-CANARY-key-9f3b27c1d0"
API_KEY = "api-e2e-CANARY-ident-55aa01"
MESSAGE = "{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}"
DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}


def encoded_key(encoding):
    raw = RAW_KEY.encode()
    return {"raw": RAW_KEY, "base64": base64.b64encode(raw).decode(), "hex": raw.hex()}[encoding]


def hmac_entry(*, algorithm=None, key_encoding=None, output_encoding=None, ts_format=None, message=MESSAGE,
               headers=None, credentials=None, allow_chunked=None, host="allowed.test"):
    sig = {"message": message}
    if algorithm:
        sig["algorithm"] = algorithm
    if key_encoding:
        sig["key_encoding"] = key_encoding
    if output_encoding:
        sig["output_encoding"] = output_encoding
    cfg = {
        "signature": sig,
        "credentials": credentials or {"secret": {"type": "env", "var": KEY_VAR},
                                       "api_key": {"type": "env", "var": API_KEY_VAR}},
        "headers": headers or [{"name": "X-Venue-Timestamp", "value": "{{.Timestamp}}"},
                               {"name": "X-Venue-Signature", "value": "{{.Signature}}"},
                               {"name": "X-Venue-Key", "value": "{{.Credentials.api_key}}"}],
        "rules": [{"host": host}],
    }
    if ts_format:
        cfg["timestamp"] = {"format": ts_format}
    if allow_chunked is not None:
        cfg["allow_chunked_body"] = allow_chunked
    return {"name": "hmac_sign", "config": cfg}


def start(proxy_factory, entry, *, key_encoding="raw", env=None, proxy_extra=None):
    e = {KEY_VAR: encoded_key(key_encoding), API_KEY_VAR: API_KEY}
    e.update(env or {})
    return proxy_factory.start(transforms=[allowlist_transform("allowed.test", "other.test"), entry], env=e,
                               proxy_extra=proxy_extra)


def send(proxy, upstream, path, *, host="allowed.test", method="POST", data=None, headers=(), extra=()):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}", method=method, data=data,
                        headers=[f"Host: {host}:{upstream.port}", *headers], extra=list(extra))


def received_headers(record):
    return {k.lower(): v for k, v in record["headers"]}


def expected_signature(message: str, algorithm="sha256", output="base64"):
    mac = hmac.new(RAW_KEY.encode(), message.encode(), DIGESTS[algorithm]).digest()
    return base64.b64encode(mac).decode() if output == "base64" else mac.hex()


def hmac_trace(rec):
    [tr] = [t for t in rec["request_transforms"] if t["name"] == "hmac_sign"]
    return tr


def no_key_anywhere(proxy, *responses):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    for r in responses:
        text += r.body.decode("utf-8", "replace")
    for secret in (RAW_KEY, encoded_key("base64"), encoded_key("hex")):
        assert secret not in text


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha1"])
@pytest.mark.parametrize("key_encoding", ["raw", "base64", "hex"])
@pytest.mark.parametrize("output", ["base64", "hex"])
def test_signature_recomputed_by_origin(proxy_factory, http_upstream, algorithm, key_encoding, output):
    entry = hmac_entry(algorithm=algorithm, key_encoding=key_encoding, output_encoding=output)
    proxy = start(proxy_factory, entry, key_encoding=key_encoding)
    body = '{"order":"buy","qty":3}'
    r = send(proxy, http_upstream, "/echo/orders?b=2&a=1", data=body,
             headers=["Content-Type: application/json", "X-Venue-Signature: forged-by-client"])
    assert r.http_code == 200, r
    got = r.json()
    h = received_headers(got)
    ts = h["x-venue-timestamp"]
    assert re.fullmatch(r"\d{10}", ts) and abs(int(ts) - time.time()) < 120
    message = f"{ts}POST/echo/orders?b=2&a=1{body}"
    assert h["x-venue-signature"] == expected_signature(message, algorithm, output)
    assert h["x-venue-key"] == API_KEY
    # One value each, the client's forged signature replaced; the body went through unchanged.
    assert [k for k, _ in got["headers"]].count("X-Venue-Signature") == 1
    assert got["body"] == body
    rec = proxy.wait_audit(1)[0]
    assert hmac_trace(rec)["annotations"]["injected"] == [
        "header:X-Venue-Timestamp", "header:X-Venue-Signature", "header:X-Venue-Key"]
    assert rec["audit"]["action"] == "allow"
    no_key_anywhere(proxy, r)


@pytest.mark.parametrize("fmt,pattern", [
    ("unix_seconds", r"\d{10}"), ("unix_millis", r"\d{13}"), ("unix_nanos", r"\d{19}"),
    ("rfc3339", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")])
def test_timestamp_formats_and_all_message_fields(proxy_factory, http_upstream, fmt, pattern):
    message = ("{{.Timestamp}}|{{.Method}}|{{.Path}}|{{.PathWithQuery}}|{{.Query}}|{{.Host}}|{{.Body}}|"
               '{{ printf "%s-%s" .Method .Host }}')
    headers = [{"name": "CB-ACCESS-TIMESTAMP", "value": "{{ .Timestamp }}"},
               {"name": "CB-ACCESS-SIGN", "value": "{{- .Signature -}}"},
               {"name": "CB-ACCESS-KEY", "value": '{{ index .Credentials "api_key" }}'}]
    proxy = start(proxy_factory, hmac_entry(ts_format=fmt, message=message, headers=headers))
    # A percent-encoded path is signed as sent, which is what the origin receives and verifies.
    r = send(proxy, http_upstream, "/echo/a%20b?x=1&y=%2F", method="PUT", data="payload")
    assert r.http_code == 200, r
    got = r.json()
    assert got["raw_target"] == "/echo/a%20b?x=1&y=%2F"
    h = received_headers(got)
    ts = h["cb-access-timestamp"]
    assert re.fullmatch(pattern, ts), ts
    expected = (f"{ts}|PUT|/echo/a%20b|/echo/a%20b?x=1&y=%2F|x=1&y=%2F|allowed.test|payload|PUT-allowed.test")
    assert h["cb-access-sign"] == expected_signature(expected)
    assert h["cb-access-key"] == API_KEY
    names = [k for k, _ in got["headers"]]
    assert "CB-ACCESS-SIGN" in names and "CB-ACCESS-KEY" in names  # exact spelling on the wire


def test_get_without_body_and_unmatched_host(proxy_factory, http_upstream):
    proxy = start(proxy_factory, hmac_entry())
    r = send(proxy, http_upstream, "/echo/x", method="GET")
    assert r.http_code == 200, r
    h = received_headers(r.json())
    assert h["x-venue-signature"] == expected_signature(f"{h['x-venue-timestamp']}GET/echo/x")
    other = send(proxy, http_upstream, "/echo/x", host="other.test", method="GET", headers=["X-Venue-Key: mine"])
    assert other.http_code == 200, other
    oh = received_headers(other.json())
    assert "x-venue-signature" not in oh and oh["x-venue-key"] == "mine"


def error_body(r):
    assert r.info.get("content_type", "").startswith("application/json"), r.info
    return json.loads(r.body)


@pytest.mark.parametrize("oversize", ["reject", "forward"])
def test_body_over_the_cap_is_413(proxy_factory, http_upstream, oversize):
    proxy = start(proxy_factory, hmac_entry(),
                  proxy_extra={"max_request_body_bytes": 64, "oversize_body": oversize})
    r = send(proxy, http_upstream, "/echo/big", data="x" * 200)
    assert r.http_code == 413, r
    assert not http_upstream.requests_for("/echo/big")  # never signed short, never forwarded
    rec = proxy.wait_audit(1)[0]
    assert rec["audit"]["status_code"] == 413
    if oversize == "forward":  # the transform itself saw the prefix and refused it
        assert error_body(r) == {"error": "hmac_sign", "reason": "body_truncated"}
        ann = hmac_trace(rec)["annotations"]
        assert ann["rejected"] == "body_truncated"
        assert ann["content_length"] == 200 and ann["buffered_length"] == 64
        assert rec["rejected_by"] == "hmac_sign"


def test_chunked_body_refused_unless_allowed(proxy_factory, http_upstream):
    proxy = start(proxy_factory, hmac_entry())
    r = send(proxy, http_upstream, "/echo/chunked", data="chunk-body", headers=["Transfer-Encoding: chunked"])
    assert r.http_code == 400, r
    assert error_body(r) == {"error": "hmac_sign", "reason": "chunked_body_not_allowed"}
    assert not http_upstream.requests_for("/echo/chunked")
    rec = proxy.wait_audit(1)[0]
    assert hmac_trace(rec)["annotations"]["rejected"] == "chunked_body_not_allowed"
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == 400

    allowed = start(proxy_factory, hmac_entry(allow_chunked=True))
    ok = send(allowed, http_upstream, "/echo/chunked", data="chunk-body", headers=["Transfer-Encoding: chunked"])
    assert ok.http_code == 200, ok
    h = received_headers(ok.json())
    assert ok.json()["body"] == "chunk-body"
    assert h["x-venue-signature"] == expected_signature(f"{h['x-venue-timestamp']}POST/echo/chunkedchunk-body")


def test_credential_unavailable_is_502(proxy_factory, http_upstream):
    entry = hmac_entry(credentials={"secret": {"type": "env", "var": "HMAC_E2E_UNSET_VAR"},
                                    "api_key": {"type": "env", "var": API_KEY_VAR}})
    proxy = start(proxy_factory, entry)
    r = send(proxy, http_upstream, "/echo/x", data="b")
    assert r.http_code == 502, r
    assert error_body(r) == {"error": "hmac_sign", "reason": "credential_unavailable"}
    ann = hmac_trace(proxy.wait_audit(1)[0])["annotations"]
    assert ann["rejected"] == "credential_unavailable" and ann["credential"] == "secret"
    assert "HMAC_E2E_UNSET_VAR" in ann["error"]
    assert not http_upstream.requests_for("/echo/x")


@pytest.mark.parametrize("case,status,reason", [
    ("message", 500, "message_template_failed"),
    ("key", 500, "key_decode_failed"),
    ("header", 500, "header_template_failed"),
])
def test_render_failures(proxy_factory, http_upstream, case, status, reason):
    kw = {}
    key_encoding = "raw"
    if case == "message":
        kw["message"] = "{{.Timestamp}}{{.NoSuchField}}"
    elif case == "key":
        kw["key_encoding"] = "hex"  # the raw key is not hex
    else:
        kw["headers"] = [{"name": "X-Venue-Signature", "value": "{{.Signature}}"},
                         {"name": "X-Venue-Passphrase", "value": "{{.Credentials.passphrase}}"}]
    proxy = start(proxy_factory, hmac_entry(**kw), key_encoding=key_encoding)
    r = send(proxy, http_upstream, "/echo/x", data="b", headers=["X-Venue-Signature: client"])
    assert r.http_code == status, r
    assert error_body(r) == {"error": "hmac_sign", "reason": reason}
    rec = proxy.wait_audit(1)[0]
    ann = hmac_trace(rec)["annotations"]
    assert ann["rejected"] == reason and ann["error"]
    if case == "header":
        assert ann["header"] == "X-Venue-Passphrase" and "passphrase" in ann["error"]
    if case == "message":
        assert "NoSuchField" in ann["error"]
    assert audit.check_shape(rec)["status_code"] == status
    assert not http_upstream.requests_for("/echo/x")
    no_key_anywhere(proxy, r)


def test_config_errors(proxy_factory, iron_binary, tmp_path, bed):
    from harness.proxy import run_binary
    from harness.yamlgen import dump
    cases = [
        (hmac_entry(algorithm="md5"), 'unknown signature.algorithm "md5" (want sha256|sha512|sha1)'),
        (hmac_entry(credentials={"api_key": {"type": "env", "var": API_KEY_VAR}}),
         '"credentials" must include "secret" (the HMAC key)'),
        (hmac_entry(message="{{ if .Body }}x{{ end }}"), "parsing signature.message"),
        (hmac_entry(ts_format="iso"), "unknown timestamp.format"),
    ]
    for entry, needle in cases:
        cfg = proxy_factory.config(transforms=[entry])
        path = tmp_path / "hmac.yaml"
        path.write_text(dump(cfg))
        cp = run_binary(["-config", str(path), "-check"], env={KEY_VAR: RAW_KEY, API_KEY_VAR: API_KEY})
        assert cp.returncode != 0, cp
        assert needle in cp.stderr + cp.stdout, cp.stderr
    cfg = proxy_factory.config(transforms=[hmac_entry()])
    path.write_text(dump(cfg))
    cp = run_binary(["-config", str(path), "-check"], env={KEY_VAR: RAW_KEY, API_KEY_VAR: API_KEY})
    assert cp.returncode == 0, cp.stderr


def test_http2_client_signed_and_unknown_length_refused(proxy_factory, h2_upstream, ca_cert):
    from harness.h2_client import H2Client
    e = {KEY_VAR: RAW_KEY, API_KEY_VAR: API_KEY}
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{h2_upstream.port}", env=e,
                                transforms=[allowlist_transform("allowed.test"), hmac_entry()])
    authority = f"allowed.test:{h2_upstream.port}"
    with H2Client.connect(("127.0.0.1", h2_upstream.port), "allowed.test", ca_cert) as c:
        ok = c.wait(c.request("POST", "/echo/h2?x=1", authority, headers=[("content-length", "5")], body=b"hello"))
        unknown = c.wait(c.request("POST", "/echo/h2-unknown", authority, body=b"hello"))
    assert ok.status == 200, ok
    [seen] = h2_upstream.requests_for("/echo/h2")
    h = received_headers(seen)
    assert h["x-venue-signature"] == expected_signature(f"{h['x-venue-timestamp']}POST/echo/h2?x=1hello")
    assert unknown.status == 400, unknown
    assert json.loads(bytes(unknown.body)) == {"error": "hmac_sign", "reason": "chunked_body_not_allowed"}
    assert not h2_upstream.requests_for("/echo/h2-unknown")
