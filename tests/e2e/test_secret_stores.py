"""Secret sources backed by remote stores, against local servers that speak each real wire format
(harness/secret_stores.py): AWS Secrets Manager and SSM (every call's SigV4 signature verified by
botocore), 1Password Connect and Google Secret Manager. Covers the lazy first fetch (nothing at
start-up or -check; the first request waits for it), json_key, ttl refresh, failure_ttl,
stale-while-failing, the endpoint and region variables, hmac_sign keyed from a store, the Go
proxy's own configs under -check, and that no store credential or fetched value reaches a log
line, an audit record or a response."""
import base64
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from harness import clients
from harness.configs import allowlist_transform
from harness.proxy import run_binary
from harness.secret_stores import AWSStore, GoogleSecretManager, OnePasswordConnect
from harness.yamlgen import dump

pytestmark = pytest.mark.timeout(120)

AKID = "AKIDE2ECANARY0001"
SECRET_KEY = "aws-secret-key-CANARY-7d2e91c4ab"
SESSION_TOKEN = "aws-session-token-CANARY-5e0c"
RAW_VALUE = "sm-raw-value-CANARY-0c1d2e"
KV_VALUE = "sm-kv-value-CANARY-3f4a5b"
PARAM_VALUE = "ssm-param-value-CANARY-6c7d8e"
GO_CONFIGS = Path("/work/shared/reference/go-configs")
CANARIES = [SECRET_KEY, SESSION_TOKEN, RAW_VALUE, KV_VALUE, PARAM_VALUE]


@pytest.fixture
def aws():
    store = AWSStore({AKID: SECRET_KEY}).start()
    store.secrets["prod/raw"] = RAW_VALUE
    store.secrets["prod/kv"] = json.dumps({"api_key": KV_VALUE, "other": "x"})
    store.parameters["/app/param"] = PARAM_VALUE
    yield store
    store.stop()


def aws_env(store, **extra):
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_ENDPOINT_URL_SECRETS_MANAGER": store.url, "AWS_ENDPOINT_URL_SSM": store.url}
    env.update(extra)
    return env


def swap_entry(source, placeholder, header, host="allowed.test"):
    return {"source": source, "proxy_value": placeholder, "match_headers": [header], "rules": [{"host": host}]}


def secrets_transform(*entries):
    return {"name": "secrets", "config": {"secrets": list(entries)}}


def start(proxy_factory, entries, env):
    return proxy_factory.start(transforms=[allowlist_transform("allowed.test"), secrets_transform(*entries)], env=env)


def get(proxy, upstream, headers=(), path="/echo/x"):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}",
                        headers=[f"Host: allowed.test:{upstream.port}", *headers])


def received(r):
    assert r.http_code == 200, r
    return {k.lower(): v for k, v in r.json()["headers"]}


def nothing_leaked(proxy, *responses):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    for r in responses:
        text += r.body.decode("utf-8", "replace")
    for canary in CANARIES:
        assert canary not in text, canary


def wait_for(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def secrets_trace(rec):
    [tr] = [t for t in rec["request_transforms"] if t["name"] == "secrets"]
    return tr


# --- AWS -----------------------------------------------------------------------------------------------

def test_aws_sm_lazy_signed_raw_and_json_key(proxy_factory, http_upstream, aws):
    entries = [swap_entry({"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1"}, "proxy-raw", "X-Raw"),
               swap_entry({"type": "aws_sm", "secret_id": "prod/kv", "region": "us-west-1", "json_key": "api_key"},
                          "proxy-kv", "X-Kv")]
    proxy = start(proxy_factory, entries, aws_env(aws))
    time.sleep(0.3)
    assert aws.calls == []  # building performs no I/O: the first request fetches
    r = get(proxy, http_upstream, ["X-Raw: proxy-raw", "X-Kv: proxy-kv"])
    h = received(r)
    assert h["x-raw"] == RAW_VALUE and h["x-kv"] == KV_VALUE
    # Two calls, each signed correctly (botocore agreed) for the configured region and service.
    assert aws.count(ok=True, target="secretsmanager.GetSecretValue") == 2, aws.calls
    assert aws.count(ok=False) == 0, aws.calls
    scope = aws.calls[0]["scope"]
    assert scope == {"akid": AKID, "region": "us-west-1", "service": "secretsmanager", "token": None}
    assert sorted(c["args"]["SecretId"] for c in aws.calls) == ["prod/kv", "prod/raw"]
    # Cached: a second request makes no call.
    received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))
    assert len(aws.calls) == 2
    rec = proxy.wait_audit(2)[0]
    swapped = secrets_trace(rec)["annotations"]["swapped"]
    assert {s["secret"] for s in swapped} == {"prod/raw", "prod/kv"}
    nothing_leaked(proxy)


@pytest.mark.parametrize("decrypt", [True, False])
def test_aws_ssm_parameter_and_session_token(proxy_factory, http_upstream, aws, decrypt):
    src = {"type": "aws_ssm", "name": "/app/param", "region": "eu-central-1", "with_decryption": decrypt}
    proxy = start(proxy_factory, [swap_entry(src, "proxy-param", "X-Param")],
                  aws_env(aws, AWS_SESSION_TOKEN=SESSION_TOKEN))
    h = received(get(proxy, http_upstream, ["X-Param: proxy-param"]))
    assert h["x-param"] == (PARAM_VALUE if decrypt else "AQICAHencrypted-blob")
    [call] = aws.calls
    assert call["ok"] and call["target"] == "AmazonSSM.GetParameter"
    assert call["args"] == {"Name": "/app/param", "WithDecryption": decrypt}
    assert call["scope"] == {"akid": AKID, "region": "eu-central-1", "service": "ssm", "token": SESSION_TOKEN}
    nothing_leaked(proxy)


def test_generic_endpoint_variable_and_region_from_environment(proxy_factory, http_upstream, aws):
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_ENDPOINT_URL": aws.url,
           "AWS_REGION": "ap-south-1"}
    proxy = start(proxy_factory, [swap_entry({"type": "aws_sm", "secret_id": "prod/raw"}, "proxy-raw", "X-Raw")], env)
    assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == RAW_VALUE
    assert aws.calls[0]["scope"]["region"] == "ap-south-1"


def test_wrong_key_is_refused_by_the_store_and_the_placeholder_stays(proxy_factory, http_upstream, aws):
    env = aws_env(aws, AWS_SECRET_ACCESS_KEY="not-the-key-CANARY")
    proxy = start(proxy_factory, [swap_entry({"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1"},
                                             "proxy-raw", "X-Raw")], env)
    r = get(proxy, http_upstream, ["X-Raw: proxy-raw"])
    assert received(r)["x-raw"] == "proxy-raw"  # as Go: unavailable → forwarded as sent
    assert aws.count(ok=False) == 1 and aws.calls[0]["detail"] == "signature mismatch"
    rec = proxy.wait_audit(1)[0]
    assert secrets_trace(rec)["annotations"]["secret_unavailable"] == ["prod/raw"]
    assert "InvalidSignatureException" in proxy.stderr_text()
    assert "not-the-key-CANARY" not in proxy.stderr_text()


def test_ttl_refresh_picks_up_a_rotated_value(proxy_factory, http_upstream, aws):
    src = {"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1", "ttl": "1s"}
    proxy = start(proxy_factory, [swap_entry(src, "proxy-raw", "X-Raw")], aws_env(aws))
    assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == RAW_VALUE
    aws.secrets["prod/raw"] = "rotated-CANARY-value"
    CANARIES.append("rotated-CANARY-value")
    try:
        assert wait_for(lambda: received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"]
                        == "rotated-CANARY-value", timeout=10, step=0.3)
        nothing_leaked(proxy)
    finally:
        CANARIES.remove("rotated-CANARY-value")


def test_failure_ttl_then_recovery(proxy_factory, http_upstream, aws):
    aws.fail_with = (500, {"__type": "InternalServiceError", "message": "try later"})
    src = {"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1", "failure_ttl": "2s"}
    proxy = start(proxy_factory, [swap_entry(src, "proxy-raw", "X-Raw")], aws_env(aws))
    assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == "proxy-raw"
    # The failure is cached: no second call to the store within failure_ttl.
    assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == "proxy-raw"
    assert len(aws.calls) == 1
    aws.fail_with = None
    assert wait_for(lambda: len(aws.calls) >= 2, timeout=8)
    assert wait_for(lambda: received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == RAW_VALUE,
                    timeout=5, step=0.2)
    assert "InternalServiceError" in proxy.stderr_text()


def test_stale_value_served_while_the_store_fails(proxy_factory, http_upstream, aws):
    src = {"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1", "ttl": "1s"}
    proxy = start(proxy_factory, [swap_entry(src, "proxy-raw", "X-Raw")], aws_env(aws))
    assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == RAW_VALUE
    aws.fail_with = (500, {"__type": "InternalServiceError"})
    assert wait_for(lambda: len(aws.calls) >= 3, timeout=10)  # refreshes tried (and failed) meanwhile
    for _ in range(3):
        assert received(get(proxy, http_upstream, ["X-Raw: proxy-raw"]))["x-raw"] == RAW_VALUE


def test_concurrent_first_requests_share_one_fetch(proxy_factory, http_upstream, aws):
    import concurrent.futures
    proxy = start(proxy_factory, [swap_entry({"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1"},
                                             "proxy-raw", "X-Raw")], aws_env(aws))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: get(proxy, http_upstream, ["X-Raw: proxy-raw"]), range(8)))
    assert all(received(r)["x-raw"] == RAW_VALUE for r in results)
    assert len(aws.calls) == 1


def test_hmac_sign_keyed_from_secrets_manager(proxy_factory, http_upstream, aws):
    import hashlib
    import hmac
    aws.secrets["venue/key"] = json.dumps({"secret": "hmac-key-CANARY-from-sm", "id": "acct-1"})
    entry = {"name": "hmac_sign", "config": {
        "signature": {"message": "{{.Timestamp}}{{.Method}}{{.Path}}", "output_encoding": "hex"},
        "credentials": {
            "secret": {"type": "aws_sm", "secret_id": "venue/key", "region": "us-east-1", "json_key": "secret"},
            "account": {"type": "aws_sm", "secret_id": "venue/key", "region": "us-east-1", "json_key": "id"}},
        "headers": [{"name": "X-Ts", "value": "{{.Timestamp}}"}, {"name": "X-Sig", "value": "{{.Signature}}"},
                    {"name": "X-Account", "value": "{{.Credentials.account}}"}],
        "rules": [{"host": "allowed.test"}]}}
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), entry], env=aws_env(aws))
    assert aws.calls == []
    h = received(get(proxy, http_upstream))
    mac = hmac.new(b"hmac-key-CANARY-from-sm", f"{h['x-ts']}GET/echo/x".encode(), hashlib.sha256).hexdigest()
    assert h["x-sig"] == mac and h["x-account"] == "acct-1"
    assert "hmac-key-CANARY-from-sm" not in proxy.stderr_text()


# --- the Go proxy's own configs ------------------------------------------------------------------------

@pytest.fixture
def go_config_dir(tmp_path, proxy_ca):
    (tmp_path / "tmp").mkdir()
    shutil.copy(proxy_ca[0], tmp_path / "tmp" / "ca.crt")
    shutil.copy(proxy_ca[1], tmp_path / "tmp" / "ca.key")
    return tmp_path


@pytest.mark.parametrize("name", ["aws_sm", "aws_ssm", "onepassword_connect"])
def test_go_store_configs_pass_check_without_contacting_a_store(go_config_dir, name):
    cfg = GO_CONFIGS / f"integration_test__testdata__{name}.yaml"
    # No credentials, no endpoint, no Connect host: -check must not need them (lazy, no I/O).
    cp = run_binary(["-config", str(cfg), "-check"], cwd=go_config_dir, env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert cp.returncode == 0, cp.stderr + cp.stdout


def test_go_onepassword_sdk_config_is_a_clear_error(go_config_dir):
    cfg = GO_CONFIGS / "integration_test__testdata__onepassword.yaml"
    cp = run_binary(["-config", str(cfg), "-check"], cwd=go_config_dir)
    assert cp.returncode != 0
    out = cp.stderr + cp.stdout
    assert "1password" in out and "1password_connect" in out, out


# --- 1Password Connect ---------------------------------------------------------------------------------

OP_TOKEN = "op-connect-token-CANARY-1a2b3c"
OP_PASSWORD = "op-password-CANARY-4d5e6f"
OP_SECTION_VALUE = "op-section-value-CANARY-7a8b"
VAULT_ID = "abcdefghijklmnopqrstuvwxy1"
ITEM_ID = "zyxwvutsrqponmlkjihgfedcb2"


@pytest.fixture
def op():
    store = OnePasswordConnect(OP_TOKEN).start()
    store.add_item(VAULT_ID, "iron-proxy-itests", {
        "id": ITEM_ID, "title": "itests-password", "category": "LOGIN", "vault": {"id": VAULT_ID},
        "sections": [{"id": "sec1", "label": "api"}],
        "fields": [
            {"id": "username", "type": "STRING", "purpose": "USERNAME", "label": "username", "value": "bot"},
            {"id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": OP_PASSWORD},
            {"id": "f9", "type": "CONCEALED", "label": "token", "value": OP_SECTION_VALUE, "section": {"id": "sec1"}},
            {"id": "f10", "type": "STRING", "label": "json", "value": json.dumps({"k": "from-json"})},
        ]})
    CANARIES.extend([OP_TOKEN, OP_PASSWORD, OP_SECTION_VALUE])
    yield store
    for c in (OP_TOKEN, OP_PASSWORD, OP_SECTION_VALUE):
        CANARIES.remove(c)
    store.stop()


def op_env(store):
    return {"OP_CONNECT_HOST": store.url, "OP_CONNECT_TOKEN": OP_TOKEN}


def test_onepassword_connect_by_title_id_section_and_json_key(proxy_factory, http_upstream, op):
    entries = [
        swap_entry({"type": "1password_connect", "secret_ref": "op://iron-proxy-itests/itests-password/password"},
                   "proxy-op", "X-Op"),
        swap_entry({"type": "1password_connect", "secret_ref": f"op://{VAULT_ID}/{ITEM_ID}/api/token"},
                   "proxy-op-section", "X-Op-Section"),
        swap_entry({"type": "1password_connect", "secret_ref": "op://iron-proxy-itests/itests-password/f10",
                    "json_key": "k"}, "proxy-op-json", "X-Op-Json"),
    ]
    proxy = start(proxy_factory, entries, op_env(op))
    time.sleep(0.2)
    assert op.calls == []  # lazy
    h = received(get(proxy, http_upstream, ["X-Op: proxy-op", "X-Op-Section: proxy-op-section",
                                            "X-Op-Json: proxy-op-json"]))
    assert h["x-op"] == OP_PASSWORD and h["x-op-section"] == OP_SECTION_VALUE and h["x-op-json"] == "from-json"
    assert op.count(ok=False) == 0
    paths = [c["path"] for c in op.calls]
    # By title: the vault and item are looked up with Connect's filters; by ID: fetched directly.
    assert "/v1/vaults" in paths and f"/v1/vaults/{VAULT_ID}/items" in paths
    assert any(c.get("query") == "filter=name%20eq%20%22iron-proxy-itests%22" for c in op.calls), op.calls
    assert paths.count(f"/v1/vaults/{VAULT_ID}/items/{ITEM_ID}") == 3
    rec = proxy.wait_audit(1)[0]
    names = {s["secret"] for s in secrets_trace(rec)["annotations"]["swapped"]}
    assert "op://iron-proxy-itests/itests-password/password" in names
    nothing_leaked(proxy)


def test_onepassword_connect_errors_are_unavailable(proxy_factory, http_upstream, op):
    entries = [
        swap_entry({"type": "1password_connect", "secret_ref": "op://iron-proxy-itests/itests-password/nope"},
                   "proxy-a", "X-A"),
        swap_entry({"type": "1password_connect", "secret_ref": "op://no-such-vault/item/password"}, "proxy-b", "X-B"),
    ]
    proxy = start(proxy_factory, entries, {"OP_CONNECT_HOST": op.url, "OP_CONNECT_TOKEN": OP_TOKEN})
    h = received(get(proxy, http_upstream, ["X-A: proxy-a", "X-B: proxy-b"]))
    assert h["x-a"] == "proxy-a" and h["x-b"] == "proxy-b"
    err = proxy.stderr_text()
    assert 'field \\"nope\\" not found on item' in err, err
    assert 'looking up vault \\"no-such-vault\\"' in err
    nothing_leaked(proxy)


def test_onepassword_connect_bad_token_and_config_errors(proxy_factory, http_upstream, op, tmp_path):
    proxy = start(proxy_factory, [swap_entry({"type": "1password_connect",
                                              "secret_ref": "op://iron-proxy-itests/itests-password/password"},
                                             "proxy-op", "X-Op")],
                  {"OP_CONNECT_HOST": op.url, "OP_CONNECT_TOKEN": "wrong-token"})
    assert received(get(proxy, http_upstream, ["X-Op: proxy-op"]))["x-op"] == "proxy-op"
    assert op.count(ok=False) == 1 and "401" in proxy.stderr_text()
    for ref, needle in [("vault/item/field", 'must start with "op://"'), ("op://a/b", "3 or 4 path segments"),
                        ("op://a//c", "empty path segment")]:
        cfg = proxy_factory.config(transforms=[secrets_transform(swap_entry(
            {"type": "1password_connect", "secret_ref": ref}, "p", "X"))])
        path = tmp_path / "op.yaml"
        path.write_text(dump(cfg))
        cp = run_binary(["-config", str(path), "-check"])
        assert cp.returncode != 0 and needle in cp.stderr + cp.stdout, cp.stderr


# --- Google Secret Manager -----------------------------------------------------------------------------

GSM_TOKEN = "ya29.gsm-access-token-CANARY-91ab"
GSM_VALUE = "gsm-value-CANARY-2c3d4e"


@pytest.fixture
def gsm(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    store = GoogleSecretManager(GSM_TOKEN, key.public_key(), "proxy@proj.iam.gserviceaccount.com").start()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(json.dumps({"type": "service_account", "project_id": "proj", "private_key_id": "kid1",
                                   "private_key": pem, "client_email": "proxy@proj.iam.gserviceaccount.com",
                                   "token_uri": f"{store.url}/token"}))
    store.keyfile = keyfile
    store.pem_line = pem.splitlines()[1]
    store.versions["projects/proj/secrets/api-key/versions/latest"] = GSM_VALUE.encode()
    store.versions["projects/proj/secrets/cfg/versions/3"] = json.dumps({"token": "json-CANARY-x"}).encode()
    CANARIES.extend([GSM_TOKEN, GSM_VALUE, store.pem_line])
    yield store
    for c in (GSM_TOKEN, GSM_VALUE, store.pem_line):
        CANARIES.remove(c)
    store.stop()


def test_gcp_secret_manager_access_with_service_account(proxy_factory, http_upstream, gsm):
    entries = [
        swap_entry({"type": "gcp_sm", "secret": "projects/proj/secrets/api-key", "endpoint": gsm.url},
                   "proxy-gsm", "X-Gsm"),
        swap_entry({"type": "gcp_sm", "secret": "projects/proj/secrets/cfg/versions/3", "endpoint": gsm.url,
                    "json_key": "token"}, "proxy-gsm-json", "X-Gsm-Json"),
    ]
    proxy = start(proxy_factory, entries, {"GOOGLE_APPLICATION_CREDENTIALS": str(gsm.keyfile)})
    time.sleep(0.2)
    assert gsm.calls == [] and gsm.token_requests == []  # lazy
    h = received(get(proxy, http_upstream, ["X-Gsm: proxy-gsm", "X-Gsm-Json: proxy-gsm-json"]))
    assert h["x-gsm"] == GSM_VALUE and h["x-gsm-json"] == "json-CANARY-x"
    assert gsm.token_requests and all(t["ok"] for t in gsm.token_requests), gsm.token_requests
    assert {c["path"] for c in gsm.calls} == {"/v1/projects/proj/secrets/api-key/versions/latest:access",
                                              "/v1/projects/proj/secrets/cfg/versions/3:access"}
    assert gsm.count(ok=False) == 0
    rec = proxy.wait_audit(1)[0]
    names = {s["secret"] for s in secrets_trace(rec)["annotations"]["swapped"]}
    assert "projects/proj/secrets/api-key/versions/latest" in names
    nothing_leaked(proxy)


def test_gcp_secret_manager_errors(proxy_factory, http_upstream, gsm, tmp_path):
    entries = [swap_entry({"type": "gcp_sm", "secret": "projects/proj/secrets/missing", "endpoint": gsm.url},
                          "proxy-gsm", "X-Gsm")]
    proxy = start(proxy_factory, entries, {"GOOGLE_APPLICATION_CREDENTIALS": str(gsm.keyfile)})
    assert received(get(proxy, http_upstream, ["X-Gsm: proxy-gsm"]))["x-gsm"] == "proxy-gsm"
    assert "NOT_FOUND" in proxy.stderr_text()
    nothing_leaked(proxy)
    cfg = proxy_factory.config(transforms=[secrets_transform(swap_entry(
        {"type": "gcp_sm", "secret": "proj/api-key"}, "p", "X"))])
    path = tmp_path / "gsm.yaml"
    path.write_text(dump(cfg))
    cp = run_binary(["-config", str(path), "-check"])
    assert cp.returncode != 0 and "projects/PROJECT/secrets/SECRET" in cp.stderr, cp.stderr


# --- canary --------------------------------------------------------------------------------------------

def test_canary_no_store_credential_token_or_value_escapes(proxy_factory, http_upstream, aws, op, gsm):
    """Every store and hmac_sign at once, through non-echo endpoints, successes and refusals:
    no credential, token, signing key or fetched value in stdout, stderr, the audit file or any
    byte returned to the client (headers included), in raw, hex or base64 form."""
    aws.secrets["venue/hmac"] = "hmac-key-CANARY-canary-run"
    CANARIES.append("hmac-key-CANARY-canary-run")
    try:
        entries = [
            swap_entry({"type": "aws_sm", "secret_id": "prod/raw", "region": "us-west-1"}, "proxy-raw", "X-Raw"),
            swap_entry({"type": "aws_ssm", "name": "/app/param", "region": "us-west-1"}, "proxy-param", "X-Param"),
            swap_entry({"type": "1password_connect", "secret_ref": "op://iron-proxy-itests/itests-password/password"},
                       "proxy-op", "X-Op"),
            swap_entry({"type": "gcp_sm", "secret": "projects/proj/secrets/api-key", "endpoint": gsm.url},
                       "proxy-gsm", "X-Gsm"),
        ]
        hmac_entry = {"name": "hmac_sign", "config": {
            "signature": {"message": "{{.Timestamp}}{{.Method}}{{.Path}}{{.Body}}"},
            "credentials": {"secret": {"type": "aws_sm", "secret_id": "venue/hmac", "region": "us-west-1"}},
            "headers": [{"name": "X-Sig", "value": "{{.Signature}}"}],
            "rules": [{"host": "allowed.test"}]}}
        env = aws_env(aws, AWS_SESSION_TOKEN=SESSION_TOKEN)
        env.update(op_env(op))
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(gsm.keyfile)
        proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), secrets_transform(*entries),
                                                hmac_entry], env=env)
        headers = ["X-Raw: proxy-raw", "X-Param: proxy-param", "X-Op: proxy-op", "X-Gsm: proxy-gsm"]
        responses = [
            get(proxy, http_upstream, headers, path="/status/200"),
            get(proxy, http_upstream, headers, path="/status/404"),
            clients.curl(f"http://127.0.0.1:{proxy.http_port}/status/200", method="POST", data="b" * 10,
                         headers=[f"Host: allowed.test:{http_upstream.port}", "Transfer-Encoding: chunked", *headers],
                         extra=["-i"]),
            clients.curl(f"http://127.0.0.1:{proxy.http_port}/status/200", extra=["-i"],
                         headers=[f"Host: allowed.test:{http_upstream.port}", *headers]),
        ]
        assert [r.http_code for r in responses] == [200, 404, 400, 200]
        # The origin did receive the real values (so the check below is not vacuous).
        got = {k.lower(): v for k, v in http_upstream.requests_for("/status/200")[0]["headers"]}
        assert got["x-raw"] == RAW_VALUE and got["x-op"] == OP_PASSWORD and got["x-gsm"] == GSM_VALUE
        assert got["x-param"] == PARAM_VALUE and got["x-sig"]
        proxy.wait_audit(4)
        proxy.stop()
        text = proxy.stderr_text() + proxy.stdout_text() + proxy.audit_path.read_text()
        text += "".join(r.body.decode("utf-8", "replace") for r in responses)
        for canary in CANARIES:
            for form in (canary, canary.encode().hex(), base64.b64encode(canary.encode()).decode()[:-4]):
                assert form not in text, canary
    finally:
        CANARIES.remove("hmac-key-CANARY-canary-run")
