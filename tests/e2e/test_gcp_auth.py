"""The gcp_auth and gcp_id_token transforms against a local Google token endpoint and metadata
server (harness/token_servers.py) that verify what they get: the service-account assertion's RS256
signature with the keyfile's public key, its aud (the keyfile's token_uri), scope, sub (domain-wide
delegation) and target_audience claims, and the metadata server's Metadata-Flavor header. The
origin checks the injected header. Covered: keyfile_path, keyfile from a secret source, workload
identity (GOOGLE_APPLICATION_CREDENTIALS, the metadata server via GCE_METADATA_HOST), the stubs
for the token and metadata endpoints, ID tokens for an audience (Authorization or
X-Serverless-Authorization), caching, mint failures (403 with the annotations), the Go proxy's
own configs under -check, and no key or token in any log line, audit record or response."""
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from harness import audit, clients
from harness.configs import allowlist_transform
from harness.proxy import run_binary
from harness.token_servers import GoogleServer, b64url_decode, new_rsa_key, verify_rs256

pytestmark = pytest.mark.timeout(90)

GO_CONFIGS = Path("/work/shared/reference/go-configs")
EMAIL = "robot@proj.iam.gserviceaccount.com"
SCOPES = ["https://www.googleapis.com/auth/bigquery", "https://www.googleapis.com/auth/cloud-platform"]
AUDIENCE = "https://private-run.example.test"
DOMAINS = ("allowed.test", "oauth2.googleapis.com", "metadata.google.internal", "169.254.169.254")


@pytest.fixture(scope="module")
def sa_key():
    return new_rsa_key()


@pytest.fixture
def google(sa_key):
    srv = GoogleServer().start()
    srv.accounts = {EMAIL: sa_key[0].public_key()}
    yield srv
    srv.stop()


@pytest.fixture
def keyfile(google, sa_key, tmp_path):
    path = tmp_path / "sa.json"
    path.write_text(google.keyfile(EMAIL, sa_key[1]))
    return path


def start(proxy_factory, *transforms, env=None, tmp_home=None):
    e = {"HOME": str(tmp_home or "/nonexistent"), "GOOGLE_APPLICATION_CREDENTIALS": "", "GCE_METADATA_HOST": ""}
    e.update(env or {})
    return proxy_factory.start(transforms=[allowlist_transform(*DOMAINS), *transforms], env=e)


def gcp_auth(**cfg):
    cfg.setdefault("scopes", SCOPES)
    cfg.setdefault("rules", [{"host": "allowed.test"}])
    return {"name": "gcp_auth", "config": cfg}


def gcp_id_token(**cfg):
    cfg.setdefault("audience", AUDIENCE)
    cfg.setdefault("rules", [{"host": "allowed.test"}])
    return {"name": "gcp_id_token", "config": cfg}


def get(proxy, upstream, path="/api/q", host="allowed.test", port=None, **kw):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}", headers=[f"Host: {host}:{port or upstream.port}"], **kw)


def received(upstream, name="authorization"):
    return [next((v for k, v in r["headers"] if k.lower() == name), None) for r in upstream.requests_for("/api")]


def trace(rec, name):
    [tr] = [t for t in rec["request_transforms"] if t["name"] == name]
    return tr


def no_secret_anywhere(proxy, google, sa_key, *responses):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    for r in responses:
        text += r.body.decode("utf-8", "replace")
    key_lines = [l for l in sa_key[1].splitlines() if not l.startswith("-----")]
    for secret in [*google.issued, *key_lines[:4]]:
        assert secret not in text, secret


def test_keyfile_path_with_subject(proxy_factory, http_upstream, google, keyfile, sa_key):
    proxy = start(proxy_factory, gcp_auth(keyfile_path=str(keyfile), subject="admin@corp.example"))
    first = get(proxy, http_upstream)
    second = get(proxy, http_upstream, "/api/second")
    assert first.http_code == 200 and second.http_code == 200, (first, second)
    [call] = google.token_calls()  # cached for the second request
    claims = call["claims"]  # verified with the keyfile's public key
    assert claims["iss"] == EMAIL and claims["aud"] == google.token_uri
    assert claims["scope"] == " ".join(SCOPES) and claims["sub"] == "admin@corp.example"
    assert claims["exp"] - claims["iat"] == 3600
    assert call["jwt_header"]["kid"] == "kid-1"
    assert received(http_upstream) == [f"Bearer {google.issued[0]}"] * 2
    for rec in proxy.wait_audit(2):
        ann = trace(rec, "gcp_auth")["annotations"]
        assert ann == {"service_account": EMAIL, "injected": ["header:Authorization"]}
    no_secret_anywhere(proxy, google, sa_key, first, second)


def test_keyfile_from_secret_source_no_subject(proxy_factory, http_upstream, google, sa_key):
    proxy = start(proxy_factory, gcp_auth(keyfile={"type": "env", "var": "GCP_SA_JSON"}, scopes=SCOPES[:1]),
                  env={"GCP_SA_JSON": google.keyfile(EMAIL, sa_key[1])})
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = google.token_calls()
    assert "sub" not in call["claims"] and call["claims"]["scope"] == SCOPES[0]
    assert received(http_upstream) == [f"Bearer {google.issued[0]}"]
    no_secret_anywhere(proxy, google, sa_key, r)


def test_workload_identity_metadata_server(proxy_factory, http_upstream, google, sa_key, tmp_path):
    proxy = start(proxy_factory, gcp_auth(credentials_provider={"type": "workload_identity"}),
                  env={"GCE_METADATA_HOST": f"127.0.0.1:{google.port}"}, tmp_home=tmp_path)
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = google.token_calls()
    assert call["method"] == "GET"
    assert call["path"] == "/computeMetadata/v1/instance/service-accounts/default/token"
    assert call["headers"]["Metadata-Flavor"] == "Google" and call["query"]["scopes"] == ",".join(SCOPES)
    assert received(http_upstream) == [f"Bearer {google.issued[0]}"]
    ann = trace(proxy.wait_audit(1)[0], "gcp_auth")["annotations"]
    assert ann == {"injected": ["header:Authorization"]}
    no_secret_anywhere(proxy, google, sa_key, r)


def test_workload_identity_application_credentials_file(proxy_factory, http_upstream, google, keyfile, sa_key):
    proxy = start(proxy_factory, gcp_auth(credentials_provider={"type": "workload_identity"}),
                  env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile), "GCE_METADATA_HOST": "127.0.0.1:1"})
    r = get(proxy, http_upstream)
    assert r.http_code == 200, r
    [call] = google.token_calls()
    assert call["path"] == "/token" and call["claims"]["iss"] == EMAIL
    assert received(http_upstream) == [f"Bearer {google.issued[0]}"]


def test_concurrent_requests_share_one_fetch(proxy_factory, http_upstream, google, keyfile):
    google.mode = "slow:1"
    proxy = start(proxy_factory, gcp_auth(keyfile_path=str(keyfile)))
    results = [None] * 6
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, get(proxy, http_upstream, f"/api/{i}")))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.http_code == 200 for r in results), results
    assert len(google.token_calls()) == 1
    assert received(http_upstream) == [f"Bearer {google.issued[0]}"] * 6


def test_sdk_token_requests_are_stubbed(proxy_factory, http_upstream, google, keyfile, sa_key):
    """An SDK in the sandbox runs its own token dance through the proxy and gets placeholders."""
    proxy = start(proxy_factory, gcp_auth(keyfile_path=str(keyfile)), gcp_id_token(keyfile_path=str(keyfile)))
    stub = {"access_token": "iron-proxy-stub-token", "expires_in": 3600, "token_type": "Bearer"}
    # The SDK's own JWT grant for an access token.
    own_jwt = "eyJhbGciOiJSUzI1NiJ9." + "eyJzY29wZSI6ImEifQ" + ".c2ln"
    r = get(proxy, http_upstream, "/token", host="oauth2.googleapis.com", port=443, method="POST",
            data=f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={own_jwt}")
    assert r.http_code == 200 and r.json() == stub, r
    r = get(proxy, http_upstream, "/computeMetadata/v1/instance/service-accounts/default/token", host="metadata.google.internal",
            port=80)
    assert r.http_code == 200 and r.json() == stub, r
    # An ID-token request at the same endpoint is gcp_id_token's, with the audience it asked for.
    id_jwt = "eyJhbGciOiJSUzI1NiJ9." + b64url_json({"target_audience": "https://svc.example.test"}) + ".c2ln"
    r = get(proxy, http_upstream, "/token", host="oauth2.googleapis.com", port=443, method="POST",
            data=f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={id_jwt}")
    assert r.http_code == 200, r
    claims = yaml.safe_load(b64url_decode(r.json()["id_token"].split(".")[1]))
    assert claims["aud"] == "https://svc.example.test" and claims["iss"] == "https://accounts.google.com"
    r = get(proxy, http_upstream, "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2Fa.test",
            host="169.254.169.254", port=80)
    assert r.http_code == 200, r
    assert yaml.safe_load(b64url_decode(r.text.split(".")[1]))["aud"] == "https://a.test"
    assert google.calls == []  # nothing reached the real endpoints
    recs = proxy.wait_audit(4)
    kinds = sorted(trace(rec, t)["annotations"]["stubbed"] for rec in recs for t in ("gcp_auth", "gcp_id_token")
                   if any(x["name"] == t and x["action"] == "stub" for x in rec["request_transforms"]))
    assert kinds == ["gcp_metadata_identity_endpoint", "gcp_oauth2_id_token_endpoint",
                     "oauth2_token_endpoint", "oauth2_token_endpoint"]


def b64url_json(obj):
    import base64
    import json
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("mode", ["unknown_account", "status:503", "down"])
def test_mint_failure_is_403(proxy_factory, http_upstream, google, keyfile, sa_key, mode):
    if mode == "unknown_account":
        google.accounts = {}
    elif mode == "down":
        google.stop()
    else:
        google.mode = mode
    proxy = start(proxy_factory, gcp_auth(keyfile_path=str(keyfile)))
    r = get(proxy, http_upstream)
    assert r.http_code == 403 and r.body == b"", r
    assert http_upstream.requests_for("/api") == []
    rec = proxy.wait_audit(1)[0]
    assert audit.check_shape(rec)["action"] == "reject" and rec["rejected_by"] == "gcp_auth"
    ann = trace(rec, "gcp_auth")["annotations"]
    assert ann["rejected"] == "token_unavailable" and ann["error"]
    no_secret_anywhere(proxy, google, sa_key, r)


def test_id_token_injected_for_audience(proxy_factory, http_upstream, google, keyfile, sa_key):
    proxy = start(proxy_factory, gcp_id_token(keyfile_path=str(keyfile), header="x_serverless_authorization"))
    first = get(proxy, http_upstream)
    second = get(proxy, http_upstream)
    assert first.http_code == 200 and second.http_code == 200
    [call] = google.token_calls()  # cached until shortly before the ID token's exp
    claims = call["claims"]
    assert claims["target_audience"] == AUDIENCE and claims["iss"] == EMAIL and "scope" not in claims
    [id_token] = [t for t in google.issued if t.count(".") == 2]
    _, minted = verify_rs256(id_token, google.google_key.public_key())
    assert minted["aud"] == AUDIENCE
    assert received(http_upstream, "x-serverless-authorization") == [f"Bearer {id_token}"] * 2
    assert received(http_upstream) == [None, None]
    ann = trace(proxy.wait_audit(2)[0], "gcp_id_token")["annotations"]
    assert ann == {"service_account": EMAIL, "audience": AUDIENCE, "injected": ["header:X-Serverless-Authorization"]}
    no_secret_anywhere(proxy, google, sa_key, first, second)


@pytest.mark.parametrize("mode,reason", [("status:503", "token_endpoint_http_503"), ("unknown_account", "invalid_grant"),
                                         ("down", "mint_failed")])
def test_id_token_mint_failure(proxy_factory, http_upstream, google, keyfile, mode, reason):
    if mode == "unknown_account":
        google.accounts = {}
    elif mode == "down":
        google.stop()
    else:
        google.mode = mode
    proxy = start(proxy_factory, gcp_id_token(keyfile_path=str(keyfile)))
    r = get(proxy, http_upstream)
    assert r.http_code == 403 and r.body == b"", r
    ann = trace(proxy.wait_audit(1)[0], "gcp_id_token")["annotations"]
    # `reason` is what every rejecting transform's trace carries (the Proxy-Status details).
    assert ann == {"error": reason, "rejected": "token_unavailable",
                   "reason": f"gcp_id_token could not mint a token ({reason})"}


@pytest.fixture
def go_dir(tmp_path, bed):
    (tmp_path / "tmp").mkdir()
    shutil.copy(bed.ca_cert, tmp_path / "tmp" / "ca.crt")
    shutil.copy(bed.ca_key, tmp_path / "tmp" / "ca.key")
    return tmp_path


@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
@pytest.mark.parametrize("name", ["gcp_auth_bigquery", "gcp_auth_bigquery_cli", "gcp_auth_workload_identity", "gcp_id_token"])
def test_go_configs_pass_check(go_dir, name):
    for src in (GO_CONFIGS / f"integration_test__testdata__{name}.yaml",
                GO_CONFIGS / "rendered" / f"integration_test__testdata__{name}.yaml"):
        if src.exists():
            cp = run_binary(["-check", "-config", str(src)], cwd=go_dir)
            assert cp.returncode == 0, (src, cp.stderr + cp.stdout)


@pytest.mark.parametrize("transform,needle", [
    (gcp_auth(), 'gcp_auth: requires exactly one of "keyfile_path", "keyfile", or "credentials_provider"'),
    (gcp_auth(keyfile_path="/k.json", scopes=[]), 'gcp_auth: at least one entry in "scopes" is required'),
    (gcp_auth(credentials_provider={"type": "workload_identity"}, subject="u@x"), '"subject" cannot be combined'),
    (gcp_auth(credentials_provider={"type": "aws"}), 'unsupported credentials_provider type "aws"'),
    (gcp_id_token(), 'gcp_id_token: requires exactly one of "keyfile_path" or "keyfile"'),
    (gcp_id_token(keyfile_path="/k.json", audience=""), 'gcp_id_token: "audience" is required'),
    (gcp_id_token(keyfile_path="/k.json", rules=[]), 'gcp_id_token: at least one entry in "rules" is required'),
    (gcp_id_token(keyfile_path="/k.json", header="x-api-key"), '"header" must be "authorization" or "x_serverless_authorization"'),
])
def test_config_errors(bed, tmp_path, transform, needle):
    cfg = {"dns": {"enabled": False}, "tls": {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)}, "transforms": [transform]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0 and needle in cp.stderr + cp.stdout, cp.stderr + cp.stdout
