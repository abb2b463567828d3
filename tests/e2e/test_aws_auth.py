"""The aws_auth transform: a workload signs its AWS requests with placeholder keys (botocore, in the
Authorization-header form and as a presigned URL); the proxy re-signs them with the real
credentials, and a local AWS-like origin verifies the result with botocore and the real keys
(harness/aws_fakes.py). Covers the region / service gates and their JSON rejections, payload
hashing within the body cap, unsigned and streaming payloads, static keys from secret sources, the
workload-identity chain against local fakes of each link (STS web identity, the container
endpoint, IMDSv2, the shared credentials file) with refresh before expiry and one resolution for
concurrent first requests, the aws_sm store reading through the same chain, the Go proxy's own
configs under -check, and that no real key, secret or session token reaches stdout, stderr, the
audit log or a response."""
import concurrent.futures
import hashlib
import http.client
import json
import shutil
import time
from pathlib import Path

import pytest

from harness.aws_fakes import FakeContainerEndpoint, FakeIMDS, FakeSTS, Issuer, SigV4Origin
from harness.configs import allowlist_transform
from harness.proxy import run_binary
from harness.secret_stores import AWSStore

pytestmark = pytest.mark.timeout(120)

FAKE_AKID, FAKE_SECRET = "AKIDWORKLOADPLACEHOLDER", "workload-placeholder-secret"
REAL_AKID, REAL_SECRET = "AKIDREALE2E00000001", "real-secret-key-CANARY-9f8e7d6c"
GO_CONFIGS = Path("/work/shared/reference/go-configs")
# Unset for the proxy (an empty variable counts as unset), so only what a test gives is used.
NO_AWS = {k: "" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                          "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                          "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION")}


@pytest.fixture
def origin():
    o = SigV4Origin().start()
    o.keys[REAL_AKID] = (REAL_SECRET, None)
    yield o
    o.stop()


def aws_auth(rules_host="allowed.test", **cfg):
    base = {"access_key_id": {"type": "env", "var": "REAL_AWS_KEY_ID"},
            "secret_access_key": {"type": "env", "var": "REAL_AWS_SECRET"}}
    if "credentials_provider" in cfg:
        base = {}
    base.update(cfg)
    base["rules"] = [{"host": rules_host}]
    return {"name": "aws_auth", "config": base}


def start(proxy_factory, tmp_path, env=None, proxy_extra=None, **cfg):
    full_env = dict(NO_AWS, HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true",
                    REAL_AWS_KEY_ID=REAL_AKID, REAL_AWS_SECRET=REAL_SECRET)
    full_env.update(env or {})
    return proxy_factory.start(transforms=[allowlist_transform("allowed.test"), aws_auth(**cfg)], env=full_env,
                               proxy_extra=proxy_extra)


def signed(method, url, *, body=b"", headers=None, service="sqs", region="us-east-1", presign=0):
    """A request botocore signs with the workload's placeholder keys: (method, path?query, headers, body)."""
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    creds = Credentials(FAKE_AKID, FAKE_SECRET)
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if presign:
        cls = auth.S3SigV4QueryAuth if service == "s3" else auth.SigV4QueryAuth
        cls(creds, service, region, expires=presign).add_auth(req)
    else:
        (auth.S3SigV4Auth if service == "s3" else auth.SigV4Auth)(creds, service, region).add_auth(req)
    p = req.prepare()
    netloc_and_target = p.url.split("://", 1)[1]
    slash = netloc_and_target.index("/")
    headers = {"Host": netloc_and_target[:slash], **dict(p.headers)}
    return method, netloc_and_target[slash:], headers, body


def send(proxy, req, extra_headers=None):
    """Sends (method, target, headers, body) to the proxy's HTTP listener; returns (status, body, headers)."""
    method, target, headers, body = req
    headers = dict(headers)
    headers.update(extra_headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=30)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def origin_url(origin, path):
    return f"http://allowed.test:{origin.port}{path}"


def nothing_leaked(proxy, canaries, *bodies):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    text += "".join(b.decode("utf-8", "replace") for b in bodies)
    for c in canaries:
        assert c not in text, c


def trace(rec):
    [t] = [t for t in rec["request_transforms"] if t["name"] == "aws_auth"]
    return t


def wait_for(predicate, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# --- static keys -------------------------------------------------------------------------------------

def test_header_form_is_resigned_with_the_real_keys(proxy_factory, tmp_path, origin):
    proxy = start(proxy_factory, tmp_path)
    body = json.dumps({"QueueName": "jobs"}).encode()
    req = signed("POST", origin_url(origin, "/?Action=CreateQueue&Attribute.1.Name=Delay%20Seconds"), body=body,
                 headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue"})
    status, rbody, _ = send(proxy, req)
    assert status == 200, rbody
    call = origin.last()
    assert call["ok"], call
    assert (call["form"], call["akid"], call["region"], call["service"]) == ("header", REAL_AKID, "us-east-1", "sqs")
    assert call["content_sha256"] == hashlib.sha256(body).hexdigest() and call["body"] == body
    # The client's signed headers stay signed; the proxy adds its own.
    assert {"host", "x-amz-target", "content-type", "x-amz-date", "x-amz-content-sha256"} <= set(call["signed"])
    rec = proxy.wait_audit(1)[0]
    assert trace(rec)["annotations"] == {"service": "sqs", "region": "us-east-1", "injected": True}
    nothing_leaked(proxy, [REAL_SECRET], rbody)


@pytest.mark.parametrize("service,path", [
    ("s3", "/bucket/dir/a%20b%2Bc~d%21.txt"),              # S3 signs the path as sent
    ("lambda", "/2015-03-31/functions/my%3Afn/invocations"),  # others: normalised, encoded once more
])
def test_path_canonicalisation_per_service(proxy_factory, tmp_path, origin, service, path):
    proxy = start(proxy_factory, tmp_path)
    status, rbody, _ = send(proxy, signed("PUT", origin_url(origin, path), body=b"payload", service=service,
                                          region="eu-west-1"))
    assert status == 200, rbody
    call = origin.last()
    assert call["ok"] and call["akid"] == REAL_AKID and call["path"] == path, call


@pytest.mark.parametrize("service,path", [
    ("s3", "/bucket/report%202026.csv?response-content-type=text%2Fcsv&versionId=v1"),  # UNSIGNED-PAYLOAD
    ("sts", "/?Action=GetCallerIdentity&Version=2011-06-15"),  # an EKS-style token: the (empty) body's hash
])
def test_presigned_url_is_resigned(proxy_factory, tmp_path, origin, service, path):
    proxy = start(proxy_factory, tmp_path)
    req = signed("GET", origin_url(origin, path), service=service, region="us-west-2", presign=300)
    assert FAKE_AKID in req[1]
    status, rbody, _ = send(proxy, req)
    assert status == 200, rbody
    call = origin.last()
    assert call["ok"], call
    assert (call["form"], call["akid"], call["region"], call["service"], call["expires"]) == \
        ("query", REAL_AKID, "us-west-2", service, "300")
    assert FAKE_AKID not in call["path"] and call["path"].startswith(path)
    assert trace(proxy.wait_audit(1)[0])["annotations"]["injected"] is True


def test_region_and_service_gates_and_missing_signature(proxy_factory, tmp_path, origin):
    proxy = start(proxy_factory, tmp_path, allowed_regions=["us-east-1"], allowed_services=["s3", "sqs"])
    cases = [
        (signed("GET", origin_url(origin, "/b/k"), service="s3", region="eu-west-1"), 403, "region_not_allowed"),
        (signed("GET", origin_url(origin, "/"), service="iam", region="us-east-1"), 403, "service_not_allowed"),
        (signed("GET", origin_url(origin, "/b/k"), service="s3", region="eu-west-1", presign=60), 403,
         "region_not_allowed"),
        (("GET", "/b/k", {"Host": f"allowed.test:{origin.port}"}, b""), 400, "missing_sigv4"),
        (("GET", "/b/k", {"Host": f"allowed.test:{origin.port}", "Authorization": "Bearer x"}, b""), 400,
         "missing_sigv4"),
    ]
    for req, want_status, reason in cases:
        status, rbody, headers = send(proxy, req)
        assert status == want_status, (reason, rbody)
        assert json.loads(rbody) == {"error": "aws_auth", "reason": reason}
        assert headers.get("Content-Type") == "application/json"
    assert origin.calls == []  # nothing reached the origin
    recs = proxy.wait_audit(len(cases))
    assert sorted(trace(r)["annotations"]["rejected"] for r in recs) == sorted(c[2] for c in cases)
    assert all(r["audit"]["action"] == "reject" and r["rejected_by"] == "aws_auth" for r in recs)
    ok_status, _, _ = send(proxy, signed("GET", origin_url(origin, "/b/k"), service="s3", region="us-east-1"))
    assert ok_status == 200 and origin.last()["ok"]


def test_body_rules_unsigned_payload_and_streaming(proxy_factory, tmp_path, origin):
    # With oversize_body: forward the transform sees the prefix, and refuses to sign it.
    proxy = start(proxy_factory, tmp_path, proxy_extra={"max_request_body_bytes": 1024, "oversize_body": "forward"})
    big = signed("PUT", origin_url(origin, "/b/big"), body=b"x" * 4096, service="s3")
    status, rbody, _ = send(proxy, big)
    assert status == 413 and json.loads(rbody)["reason"] == "body_truncated"
    ann = trace(proxy.wait_audit(1)[0])["annotations"]
    assert ann["content_length"] == 4096 and ann["buffered_length"] == 1024
    # A body signed chunk by chunk (each chunk's signature chains from the client's): refused.
    streaming = signed("PUT", origin_url(origin, "/b/s"), body=b"5;chunk-signature=ab\r\nhello\r\n", service="s3",
                       headers={"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "5"})
    streaming[2].pop("X-Amz-Content-SHA256")
    streaming[2]["X-Amz-Content-Sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    status, rbody, _ = send(proxy, streaming)
    assert status == 400 and json.loads(rbody)["reason"] == "streaming_payload_not_supported"
    assert origin.calls == []
    # Chunked framing: refused unless allow_chunked_body.
    conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=30)
    method, target, headers, _ = signed("PUT", origin_url(origin, "/b/c"), service="s3")
    headers.pop("Content-Length", None)
    conn.request(method, target, body=iter([b"abc"]), headers=headers, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 400 and json.loads(r.read())["reason"] == "chunked_body_not_allowed"
    conn.close()

    unsigned = start(proxy_factory, tmp_path, unsigned_payload=True, allow_chunked_body=True)
    status, rbody, _ = send(unsigned, signed("PUT", origin_url(origin, "/b/u"), body=b"y" * 4096, service="s3"))
    assert status == 200, rbody
    assert origin.last()["ok"] and origin.last()["content_sha256"] == "UNSIGNED-PAYLOAD"


def test_static_key_unavailable_is_a_502(proxy_factory, tmp_path, origin):
    proxy = start(proxy_factory, tmp_path, env={"REAL_AWS_SECRET": ""})
    status, rbody, _ = send(proxy, signed("GET", origin_url(origin, "/")))
    assert status == 502 and json.loads(rbody) == {"error": "aws_auth", "reason": "credential_unavailable"}
    assert origin.calls == []
    assert "REAL_AWS_SECRET" in trace(proxy.wait_audit(1)[0])["annotations"]["error"]


# --- workload identity -------------------------------------------------------------------------------

def workload(proxy_factory, tmp_path, env, **cfg):
    return start(proxy_factory, tmp_path, env=env, credentials_provider={"type": "workload_identity"}, **cfg)


def assert_signed_by(proxy, origin, expected):
    """One request; the origin saw it signed with the credentials `expected()` names."""
    status, rbody, _ = send(proxy, signed("GET", origin_url(origin, "/b/k"), service="s3"))
    assert status == 200, rbody
    call = origin.last()
    issued = expected()
    assert call["ok"] and call["akid"] == issued["AccessKeyId"] and call["token"] == issued["Token"], call
    return rbody


def rotates(proxy, origin, issuer, min_calls):
    """The cached credentials are used until refreshed before their expiry, then the new ones."""
    assert wait_for(lambda: len(issuer.issued) >= min_calls, timeout=15)
    assert wait_for(lambda: send(proxy, signed("GET", origin_url(origin, "/b/k"), service="s3"))[0] == 200
                    and origin.last()["akid"] == issuer.issued[-1]["AccessKeyId"], timeout=10, step=0.3)


def test_web_identity_via_sts_with_refresh_and_single_flight(proxy_factory, tmp_path, origin):
    issuer = Issuer("sts", 3, origin)
    sts = FakeSTS(issuer, "arn:aws:iam::123456789012:role/irsa", "eyJ-web-identity-CANARY").start()
    (tmp_path / "token").write_text("eyJ-web-identity-CANARY\n")
    try:
        proxy = workload(proxy_factory, tmp_path, {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "token"), "AWS_ROLE_ARN": sts.role_arn,
            "AWS_ROLE_SESSION_NAME": "e2e", "AWS_ENDPOINT_URL_STS": sts.url, "AWS_REGION": "us-east-1"})
        time.sleep(0.2)
        assert sts.calls == []  # nothing resolved before a request needs it
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: send(proxy, signed("GET", origin_url(origin, "/b/k"), service="s3")),
                                    range(6)))
        assert [r[0] for r in results] == [200] * 6
        assert sts.count(ok=True) == 1 and sts.calls[0]["session"] == "e2e"  # one resolution for all six
        assert origin.last()["akid"] == issuer.issued[0]["AccessKeyId"]
        rotates(proxy, origin, issuer, 2)
        assert sts.count(ok=False) == 0
        nothing_leaked(proxy, issuer.canaries() + ["eyJ-web-identity-CANARY"], *[r[1] for r in results])
    finally:
        sts.stop()


def test_container_endpoint_with_token_file_and_refresh(proxy_factory, tmp_path, origin):
    issuer = Issuer("ecs", 3, origin)
    ep = FakeContainerEndpoint(issuer, "pod-identity-token-CANARY").start()
    (tmp_path / "eks-token").write_text("pod-identity-token-CANARY")
    try:
        proxy = workload(proxy_factory, tmp_path, {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": ep.url + ep.path,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "eks-token")})
        rbody = assert_signed_by(proxy, origin, lambda: issuer.issued[0])
        rotates(proxy, origin, issuer, 2)
        assert ep.count(ok=False) == 0
        nothing_leaked(proxy, issuer.canaries() + ["pod-identity-token-CANARY"], rbody)
    finally:
        ep.stop()


def test_imdsv2_with_refresh(proxy_factory, tmp_path, origin):
    issuer = Issuer("imds", 3, origin)
    imds = FakeIMDS(issuer).start()
    try:
        proxy = workload(proxy_factory, tmp_path, {"AWS_EC2_METADATA_DISABLED": "",
                                                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
        status, rbody, _ = send(proxy, signed("GET", origin_url(origin, "/b/k"), service="s3"))
        assert status == 200 and origin.last()["akid"] == issuer.issued[0]["AccessKeyId"], rbody
        assert [c["kind"] for c in imds.calls[:3]] == ["token", "get", "get"]
        assert imds.count(ok=False) == 0  # every metadata GET carried the session token
        rotates(proxy, origin, issuer, 2)
        nothing_leaked(proxy, issuer.canaries(), rbody)
    finally:
        imds.stop()


def test_shared_credentials_file_profile(proxy_factory, tmp_path, origin):
    origin.keys["AKIDPROFILE0001"] = ("profile-secret-CANARY", "profile-token-CANARY")
    (tmp_path / "creds").write_text("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = nope\n\n"
                                    "[ci]\naws_access_key_id = AKIDPROFILE0001\n"
                                    "aws_secret_access_key = profile-secret-CANARY\n"
                                    "aws_session_token = profile-token-CANARY\n")
    proxy = workload(proxy_factory, tmp_path, {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"),
                                               "AWS_PROFILE": "ci"})
    rbody = assert_signed_by(proxy, origin, lambda: {"AccessKeyId": "AKIDPROFILE0001", "Token": "profile-token-CANARY"})
    nothing_leaked(proxy, ["profile-secret-CANARY", "profile-token-CANARY"], rbody)


def test_no_workload_credentials_is_a_502_that_says_why(proxy_factory, tmp_path, origin):
    proxy = workload(proxy_factory, tmp_path, {"AWS_EC2_METADATA_DISABLED": "",
                                               "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"})
    status, rbody, _ = send(proxy, signed("GET", origin_url(origin, "/")))
    assert status == 502 and json.loads(rbody)["reason"] == "credential_unavailable"
    ann = trace(proxy.wait_audit(1)[0])["annotations"]
    assert ann["credential"] == "workload_identity" and "instance metadata" in ann["error"], ann
    assert origin.calls == []


def test_aws_sm_store_reads_through_the_container_chain(proxy_factory, tmp_path, http_upstream):
    store = AWSStore({}).start()
    issuer = Issuer("ecs", 900, store)

    class KeyMap(dict):  # the store verifies with {akid: secret}; the issuer registers (secret, token)
        def __setitem__(self, k, v):
            super().__setitem__(k, v[0])
    store.keys = store.secret_keys = KeyMap()
    store.secrets["prod/key"] = "store-value-CANARY"
    ep = FakeContainerEndpoint(issuer, "task-token-CANARY").start()
    try:
        src = {"type": "aws_sm", "secret_id": "prod/key", "region": "us-east-1"}
        env = dict(NO_AWS, HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL=store.url,
                   AWS_CONTAINER_CREDENTIALS_FULL_URI=ep.url + ep.path, AWS_CONTAINER_AUTHORIZATION_TOKEN="task-token-CANARY")
        swap = {"name": "secrets", "config": {"secrets": [
            {"source": src, "proxy_value": "proxy-key", "match_headers": ["X-Key"], "rules": [{"host": "allowed.test"}]}]}}
        proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), swap], env=env)
        conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=30)
        conn.request("GET", "/echo/x", headers={"Host": f"allowed.test:{http_upstream.port}", "X-Key": "proxy-key"})
        r = conn.getresponse()
        echoed = {k.lower(): v for k, v in json.loads(r.read())["headers"]}
        assert echoed["x-key"] == "store-value-CANARY"
        [call] = store.calls
        assert call["ok"] and call["scope"]["akid"] == issuer.issued[0]["AccessKeyId"]
        assert call["scope"]["token"] == issuer.issued[0]["Token"]
        nothing_leaked(proxy, issuer.canaries() + ["task-token-CANARY", "store-value-CANARY"])
    finally:
        ep.stop()
        store.stop()


# --- the Go proxy's configs ------------------------------------------------------------------------

@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
@pytest.mark.parametrize("name", ["awsauth", "awsauth_workload_identity"])
def test_go_awsauth_configs_pass_check_without_credentials(tmp_path, proxy_ca, name):
    (tmp_path / "tmp").mkdir()
    shutil.copy(proxy_ca[0], tmp_path / "tmp" / "ca.crt")
    shutil.copy(proxy_ca[1], tmp_path / "tmp" / "ca.key")
    cfg = GO_CONFIGS / f"integration_test__testdata__{name}.yaml"
    # -check resolves nothing: no keys, no metadata service needed.
    cp = run_binary(["-config", str(cfg), "-check"], cwd=tmp_path, env=dict(NO_AWS, AWS_EC2_METADATA_DISABLED="true"))
    assert cp.returncode == 0, cp.stderr + cp.stdout
