"""The oauth_token transform against a local RFC 6749 token endpoint (harness/token_servers.py):
each grant (client_credentials, password, refresh_token with rotation, jwt_bearer with the
assertion's RS256 signature verified by the endpoint), scopes, header / value_prefix,
token_endpoint_headers, first matching entry wins; the origin checks the injected header; one
token fetch for many concurrent requests; refresh after expiry; a changed credential mints anew;
the token endpoint stubbed; mint failures (require false forwards without a token, require true
answers the Go proxy's 502 JSON) with their annotations; no credential or token in any log line,
audit record or response."""
import os
import signal
import threading
import time

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform
from harness.proxy import run_binary
from harness.token_servers import OAuthServer, new_rsa_key

pytestmark = pytest.mark.timeout(90)

CLIENT_ID = "client-e2e-1"
CLIENT_SECRET = "cs-CANARY-9d0e1f2a3b"
USERNAME = "ada"
PASSWORD = "pw-CANARY-7c6b5a4d"
REFRESH = "rt-CANARY-seed-0a1b2c3d"
API_KEY = "ak-CANARY-endpoint-header-55"
ENV = {"OAUTH_CLIENT_ID": CLIENT_ID, "OAUTH_CLIENT_SECRET": CLIENT_SECRET, "OAUTH_USERNAME": USERNAME,
       "OAUTH_PASSWORD": PASSWORD, "OAUTH_REFRESH": REFRESH, "OAUTH_API_KEY": API_KEY}


def env_src(var):
    return {"type": "env", "var": var}


@pytest.fixture
def oauth():
    srv = OAuthServer().start()
    srv.clients = {CLIENT_ID: CLIENT_SECRET}
    srv.users = {USERNAME: PASSWORD}
    srv.refresh_tokens = {REFRESH}
    yield srv
    srv.stop()


def entry(oauth, grant="client_credentials", host="allowed.test", **kw):
    e = {"grant": grant, "token_endpoint": oauth.url + "/token", "rules": [{"host": host}]}
    if grant in ("client_credentials", "password", "refresh_token"):
        e["client_id"] = env_src("OAUTH_CLIENT_ID")
        e["client_secret"] = env_src("OAUTH_CLIENT_SECRET")
    if grant == "password":
        e["username"] = env_src("OAUTH_USERNAME")
        e["password"] = env_src("OAUTH_PASSWORD")
    if grant == "refresh_token":
        e["refresh_token"] = env_src("OAUTH_REFRESH")
    e.update(kw)
    return e


def start(proxy_factory, *entries, env=None, domains=("allowed.test", "other.test", "warn.test", "127.0.0.1")):
    e = dict(ENV)
    e.update(env or {})
    return proxy_factory.start(transforms=[allowlist_transform(*domains),
                                           {"name": "oauth_token", "config": {"tokens": list(entries)}}], env=e)


def get(proxy, upstream, path="/api/items", host="allowed.test", headers=(), **kw):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}", headers=[f"Host: {host}:{upstream.port}", *headers], **kw)


def received(upstream, name="authorization"):
    out = []
    for r in upstream.requests_for("/api"):
        out.append(next((v for k, v in r["headers"] if k.lower() == name), None))
    return out


def oauth_trace(rec):
    [tr] = [t for t in rec["request_transforms"] if t["name"] == "oauth_token"]
    return tr


def no_secret_anywhere(proxy, oauth, *responses, extra=()):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    for r in responses:
        text += r.body.decode("utf-8", "replace")
    for secret in [CLIENT_SECRET, PASSWORD, REFRESH, API_KEY, *oauth.issued, *extra]:
        assert secret not in text, secret


def test_client_credentials_token_injected_and_cached(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth, scopes=["read:items", "write:items"]))
    first = get(proxy, http_upstream)
    second = get(proxy, http_upstream, "/api/other")
    assert first.http_code == 200 and second.http_code == 200, (first, second)
    [call] = oauth.token_calls()  # the second request reused the cached token
    assert call["form"] == {"grant_type": "client_credentials", "scope": "read:items write:items",
                            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert "Authorization" not in call["headers"]  # client authentication in the form, never Basic
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"] * 2
    recs = proxy.wait_audit(2)
    for rec in recs:
        ann = oauth_trace(rec)["annotations"]
        assert ann["grant"] == "client_credentials" and ann["injected"] == ["header:Authorization"]
        assert audit.check_shape(rec)["action"] == "allow"
    no_secret_anywhere(proxy, oauth, first, second)


def test_client_authorization_header_replaced(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth))
    r = get(proxy, http_upstream, headers=["Authorization: Bearer sandbox-fake"])
    assert r.http_code == 200, r
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"]


def test_password_grant(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth, "password", scopes=["openid"]))
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = oauth.token_calls()
    assert call["form"] == {"grant_type": "password", "username": USERNAME, "password": PASSWORD, "scope": "openid",
                            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"]
    no_secret_anywhere(proxy, oauth, r)


def test_refresh_token_grant_follows_rotation(proxy_factory, http_upstream, oauth):
    """A one-time refresh token: each refresh uses the one the endpoint returned last time."""
    oauth.rotate = True
    oauth.expires_in = 1  # every request after a second needs a new access token
    proxy = start(proxy_factory, entry(oauth, "refresh_token"))
    responses = []
    for i in range(3):
        responses.append(get(proxy, http_upstream))
        assert responses[-1].http_code == 200, responses[-1]
        time.sleep(1.2)
    calls = oauth.token_calls()
    assert len(calls) == 3
    assert calls[0]["form"]["refresh_token"] == REFRESH
    assert calls[1]["form"]["refresh_token"] != REFRESH and calls[1]["form"]["refresh_token"].startswith("rt-CANARY-rotated")
    assert calls[0]["form"]["grant_type"] == "refresh_token" and calls[0]["form"]["client_id"] == CLIENT_ID
    assert "scope" not in calls[0]["form"]
    assert received(http_upstream) == [f"Bearer {t}" for t in oauth.issued[:3]]
    rotated = [c["form"]["refresh_token"] for c in calls[1:]]
    no_secret_anywhere(proxy, oauth, *responses, extra=rotated)


def test_jwt_bearer_assertion_verified_by_endpoint(proxy_factory, http_upstream, oauth, tmp_path):
    key, pem = new_rsa_key()
    oauth.jwt_issuers = {"integration-key-1": (key.public_key(), "key-id-7", "account.example.test")}
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(pem)
    e = {"grant": "jwt_bearer", "token_endpoint": oauth.url + "/oauth/token", "rules": [{"host": "allowed.test"}],
         "issuer": {"type": "env", "var": "JWT_ISS"}, "subject": {"type": "env", "var": "JWT_SUB"},
         "private_key": {"type": "file", "path": str(key_file)}, "private_key_id": {"type": "env", "var": "JWT_KID"},
         "audience": "account.example.test", "scopes": ["signature", "impersonation"]}
    proxy = start(proxy_factory, e, env={"JWT_ISS": "integration-key-1", "JWT_SUB": "user-guid-1", "JWT_KID": "key-id-7"})
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = oauth.token_calls()
    assert call["path"] == "/oauth/token"
    assert call["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = call["claims"]  # the signature verified with the public key
    assert claims["iss"] == "integration-key-1" and claims["sub"] == "user-guid-1"
    assert claims["aud"] == "account.example.test" and claims["scope"] == "signature impersonation"
    assert 3000 < claims["exp"] - time.time() < 3700
    assert call["jwt_header"]["kid"] == "key-id-7"
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"]
    body_lines = [l for l in pem.splitlines() if not l.startswith("-----")]
    no_secret_anywhere(proxy, oauth, r, extra=body_lines[:3])


def test_header_prefix_and_token_endpoint_headers(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth, header="x-api-token", value_prefix="Token ",
                                       token_endpoint_headers={"x-api-key": env_src("OAUTH_API_KEY")}))
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = oauth.token_calls()
    assert call["headers"].get("x-api-key") == API_KEY  # the spelling given
    assert received(http_upstream, "x-api-token") == [f"Token {oauth.issued[0]}"]
    assert received(http_upstream) == [None]
    rec = proxy.wait_audit(1)[0]
    assert oauth_trace(rec)["annotations"]["injected"] == ["header:X-Api-Token"]
    no_secret_anywhere(proxy, oauth, r)


def test_first_matching_entry_wins_and_unmatched_untouched(proxy_factory, http_upstream, oauth):
    oauth.users = {USERNAME: PASSWORD}
    proxy = start(proxy_factory, entry(oauth, "password", host="allowed.test", header="X-First"),
                  entry(oauth, "client_credentials", host="*.test", header="X-Second", rules=[{"host": "other.test"}]))
    assert get(proxy, http_upstream).http_code == 200
    assert get(proxy, http_upstream, host="other.test").http_code == 200
    assert get(proxy, http_upstream, host="warn.test").http_code == 200  # matches no entry
    assert [c["form"]["grant_type"] for c in oauth.token_calls()] == ["password", "client_credentials"]
    assert received(http_upstream, "x-first") == [f"Bearer {oauth.issued[0]}", None, None]
    assert received(http_upstream, "x-second") == [None, f"Bearer {oauth.issued[1]}", None]
    recs = proxy.wait_audit(3)
    last = next(r for r in recs if r["audit"]["host"].startswith("warn.test"))
    assert "annotations" not in oauth_trace(last)


def test_concurrent_requests_share_one_fetch(proxy_factory, http_upstream, oauth):
    oauth.mode = "slow:1"
    proxy = start(proxy_factory, entry(oauth))
    results = [None] * 8

    def one(i):
        results[i] = get(proxy, http_upstream, f"/api/{i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.http_code == 200 for r in results), results
    assert len(oauth.token_calls()) == 1
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"] * 8


def test_token_refreshed_after_expiry(proxy_factory, http_upstream, oauth):
    oauth.expires_in = 1
    proxy = start(proxy_factory, entry(oauth))
    assert get(proxy, http_upstream).http_code == 200
    time.sleep(1.5)
    assert get(proxy, http_upstream).http_code == 200
    assert len(oauth.token_calls()) == 2
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}", f"Bearer {oauth.issued[1]}"]


def test_changed_credential_mints_a_new_token(proxy_factory, http_upstream, oauth, tmp_path):
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(CLIENT_SECRET)
    proxy = start(proxy_factory, entry(oauth, client_secret={"type": "file", "path": str(secret_file)}))
    assert get(proxy, http_upstream).http_code == 200
    new_secret = "cs-CANARY-rotated-77aa"
    oauth.clients = {CLIENT_ID: new_secret}
    secret_file.write_text(new_secret)
    os.kill(proxy.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and len(oauth.token_calls()) < 2:
        get(proxy, http_upstream)
        time.sleep(0.2)
    calls = oauth.token_calls()
    assert [c["form"]["client_secret"] for c in calls[:2]] == [CLIENT_SECRET, new_secret]
    assert received(http_upstream)[-1] == f"Bearer {oauth.issued[1]}"
    no_secret_anywhere(proxy, oauth, extra=[new_secret])


def test_token_endpoint_request_is_stubbed(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth))
    # The workload's own SDK asking the token endpoint (through the proxy) for a token.
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/token", method="POST",
                     headers=[f"Host: 127.0.0.1:{oauth.port}"], data="grant_type=client_credentials&client_id=x")
    assert r.http_code == 200, r
    assert r.json() == {"access_token": "iron-proxy-stub-token", "expires_in": 3600, "token_type": "Bearer"}
    assert r.info.get("content_type") == "application/json"
    assert oauth.calls == []  # never reached the endpoint
    rec = proxy.wait_audit(1)[0]
    tr = oauth_trace(rec)
    assert tr["action"] == "stub" and tr["annotations"]["stubbed"] == "oauth2_token_endpoint"
    assert rec.get("stubbed_by") == "oauth_token"


@pytest.mark.parametrize("mode,reason", [("error:invalid_grant", "invalid_grant"), ("status:503", "token_endpoint_http_503"),
                                         ("garbage", "mint_failed"), ("down", "mint_failed")])
def test_mint_failure_forwards_without_token(proxy_factory, http_upstream, oauth, mode, reason):
    if mode == "down":
        oauth.stop()
    else:
        oauth.mode = mode
    proxy = start(proxy_factory, entry(oauth))
    r = get(proxy, http_upstream, headers=["Authorization: Bearer sandbox-own"])
    assert r.http_code == 200, r
    assert received(http_upstream) == ["Bearer sandbox-own"]  # left as the client sent it
    rec = proxy.wait_audit(1)[0]
    ann = oauth_trace(rec)["annotations"]
    assert ann == {"grant": "client_credentials", "error": reason, "skipped": "token_unavailable"}
    no_secret_anywhere(proxy, oauth, r)


@pytest.mark.parametrize("mode,reason", [("error:invalid_client", "invalid_client"), ("down", "mint_failed")])
def test_mint_failure_with_require_answers_502_json(proxy_factory, http_upstream, oauth, mode, reason):
    if mode == "down":
        oauth.stop()
    else:
        oauth.mode = mode
    proxy = start(proxy_factory, entry(oauth, "password", require=True))
    r = get(proxy, http_upstream)
    assert r.http_code == 502, r
    assert r.body == b'{"error":"oauth_token failed to mint an access token","grant":"password"}'
    assert http_upstream.requests_for("/api") == []
    rec = proxy.wait_audit(1)[0]
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 502 and rec["rejected_by"] == "oauth_token"
    ann = oauth_trace(rec)["annotations"]
    assert ann["grant"] == "password" and ann["error"] == reason and ann["rejected"] == "token_unavailable"
    no_secret_anywhere(proxy, oauth, r)


@pytest.mark.parametrize("tokens,needle", [
    ([{"grant": "implicit", "token_endpoint": "https://x.test/t", "rules": [{"host": "a.test"}]}],
     '"grant" must be one of refresh_token, client_credentials, password, jwt_bearer (got "implicit")'),
    ([{"grant": "client_credentials", "client_id": {"type": "env", "var": "A"}, "token_endpoint": "https://x.test/t",
       "rules": [{"host": "a.test"}]}], 'client_credentials grant requires "client_id" and "client_secret"'),
    ([{"grant": "password", "client_id": {"type": "env", "var": "A"}, "username": {"type": "env", "var": "A"},
       "password": {"type": "env", "var": "A"}, "rules": [{"host": "a.test"}]}], 'password grant requires "token_endpoint"'),
    ([{"grant": "jwt_bearer", "issuer": {"type": "env", "var": "A"}, "subject": {"type": "env", "var": "A"},
       "private_key": {"type": "env", "var": "A"}, "token_endpoint": "https://x.test/t", "rules": [{"host": "a.test"}]}],
     'jwt_bearer grant requires "audience"'),
    ([{"grant": "client_credentials", "client_id": {"type": "env", "var": "A"}, "client_secret": {"type": "env", "var": "A"},
       "token_endpoint": "https://x.test/t"}], 'at least one entry in "rules" is required'),
    ([], 'oauth_token: at least one entry in "tokens" is required'),
])
def test_config_errors(bed, tmp_path, tokens, needle):
    import yaml
    cfg = {"dns": {"enabled": False}, "tls": {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)},
           "transforms": [{"name": "oauth_token", "config": {"tokens": tokens}}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0 and needle in cp.stderr + cp.stdout, cp.stderr + cp.stdout


def test_https_token_endpoint_is_verified(proxy_factory, http_upstream, upstream_pki):
    """An https:// endpoint: its certificate is verified (SSL_CERT_FILE names the CA that issued
    it); one the trust store does not know is a mint failure, never a token from an unverified peer."""
    srv = OAuthServer(host="127.0.0.3", tls_context=upstream_pki.server_context()).start()
    srv.clients = {CLIENT_ID: CLIENT_SECRET}
    try:
        trusted = start(proxy_factory, entry(srv), env={"SSL_CERT_FILE": str(upstream_pki.ca_path)})
        assert get(trusted, http_upstream).http_code == 200
        assert received(http_upstream) == [f"Bearer {srv.issued[0]}"]
        untrusted = start(proxy_factory, entry(srv), env={"SSL_CERT_FILE": "/dev/null"})
        assert get(untrusted, http_upstream).http_code == 200
        assert len(srv.token_calls()) == 1
        assert received(http_upstream)[-1] is None
        ann = oauth_trace(untrusted.wait_audit(1)[0])["annotations"]
        assert ann["error"] == "mint_failed" and ann["skipped"] == "token_unavailable"
        assert "certificate verify failed" in untrusted.stderr_text()
    finally:
        srv.stop()


def test_h2_client_through_the_https_listener(proxy_factory, https_upstream, oauth, ca_cert):
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}", env=ENV,
                                transforms=[allowlist_transform("allowed.test"),
                                            {"name": "oauth_token", "config": {"tokens": [entry(oauth)]}}])

    def h2(path):
        return clients.curl(f"https://allowed.test:{port}{path}", resolve=f"allowed.test:{port}:127.0.0.1",
                            cacert=ca_cert, extra=["--http2"])

    first, second = h2("/api/one"), h2("/api/two")
    assert first.http_code == 200 and first.info.get("http_version") == "2", first
    assert second.http_code == 200
    assert received(https_upstream) == [f"Bearer {oauth.issued[0]}"] * 2
    assert len(oauth.token_calls()) == 1
    no_secret_anywhere(proxy, oauth, first, second)


def test_tunnel_check_mints_nothing_the_inner_request_gets_the_token(proxy_factory, http_upstream, oauth):
    proxy = start(proxy_factory, entry(oauth))
    # -p: a CONNECT tunnel even for an http:// URL; the request inside it is a plain HTTP exchange.
    r = clients.curl(f"http://allowed.test:{http_upstream.port}/api/in-tunnel", proxy=proxy.tunnel_url, extra=["-p"])
    assert r.http_code == 200, r
    assert len(oauth.token_calls()) == 1
    assert received(http_upstream) == [f"Bearer {oauth.issued[0]}"]
    recs = proxy.wait_audit(2)
    connect = next(x for x in recs if x["audit"]["method"] == "CONNECT")
    inner = next(x for x in recs if x["audit"]["method"] == "GET")
    assert all(t["name"] != "oauth_token" for t in connect["request_transforms"])
    assert oauth_trace(inner)["annotations"]["injected"] == ["header:Authorization"]
