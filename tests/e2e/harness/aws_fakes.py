"""Local stand-ins for what the aws_auth transform talks to, each speaking the real wire format:

* SigV4Origin: an AWS-like origin that verifies every request's SigV4 signature — header form or
  presigned URL — with botocore (an independent implementation) and the real keys, as AWS would:
  the access key must be one it knows, the session token the one issued with it, the payload hash
  the body's.
* Issuer: mints numbered temporary credentials (key, secret, session token, Expiration) and tells
  the origin about them.
* FakeSTS (AssumeRoleWithWebIdentity, XML), FakeContainerEndpoint (ECS / EKS Pod Identity, JSON
  with an Authorization token), FakeIMDS (IMDSv2: PUT token, then role and credentials): each
  records its calls."""
import datetime
import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .secret_stores import AUTH_RE


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, host="127.0.0.1"):
        super().__init__((host, 0), handler)
        self.lock = threading.Lock()
        self.calls = []
        self.thread = None

    @property
    def port(self):
        return self.server_address[1]

    @property
    def url(self):
        return f"http://{self.server_address[0]}:{self.port}"

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()

    def record(self, **call):
        with self.lock:
            self.calls.append(call)

    def count(self, **match):
        with self.lock:
            return sum(1 for c in self.calls if all(c.get(k) == v for k, v in match.items()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, ctype="application/json"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --- the origin --------------------------------------------------------------------------------------

def _signer(service, region, creds, query):
    from botocore import auth
    if query:
        return (auth.S3SigV4QueryAuth if service == "s3" else auth.SigV4QueryAuth)(creds, service, region, expires=60)
    return (auth.S3SigV4Auth if service == "s3" else auth.SigV4Auth)(creds, service, region)


def _expected_signature(method, url, headers, names, akid, secret, token, region, service, amz_date, query):
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=url)
    for name in names:
        values = headers.get_all(name) or []
        req.headers[name] = ",".join(values)
    signer = _signer(service, region, Credentials(akid, secret, token), query)
    req.context["timestamp"] = amz_date
    canonical = signer.canonical_request(req)
    return signer.signature(signer.string_to_sign(req, canonical), req)


class SigV4Origin(_Server):
    """Answers 200 {"ok": true, ...} to a request whose signature botocore agrees with, else 403."""

    def __init__(self, host="127.0.0.2"):
        super().__init__(_OriginHandler, host)
        self.keys = {}  # access key id → (secret, session token or None)

    def last(self):
        with self.lock:
            return self.calls[-1]


class _OriginHandler(_Handler):
    def handle_any(self):
        body = self.body()
        ok, detail, info = self.verify(body)
        call = dict(ok=ok, detail=detail, method=self.command, path=self.path, body=body, **info)
        self.server.record(**call)
        self.reply(200 if ok else 403, {"ok": ok, "detail": detail})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def verify(self, body):
        split = urllib.parse.urlsplit(self.path)
        if self.headers.get("Authorization"):
            return self.verify_header(split, body)
        params = urllib.parse.parse_qs(split.query)
        if "X-Amz-Signature" in params:
            return self.verify_query(split, params)
        return False, "not signed", {}

    def check_key(self, akid, token):
        known = self.server.keys.get(akid)
        if known is None:
            return None, "unknown access key"
        secret, want_token = known
        if token != want_token:
            return None, "security token does not match the key"
        return secret, ""

    def verify_header(self, split, body):
        m = AUTH_RE.match(self.headers["Authorization"])
        if not m:
            return False, "malformed Authorization", {}
        akid, date, region, service, signed, signature = m.groups()
        token = self.headers.get("X-Amz-Security-Token")
        info = {"form": "header", "akid": akid, "region": region, "service": service, "token": token,
                "signed": signed.split(";"), "content_sha256": self.headers.get("X-Amz-Content-Sha256")}
        secret, why = self.check_key(akid, token)
        if secret is None:
            return False, why, info
        claim = self.headers.get("X-Amz-Content-Sha256")
        if claim and claim not in ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER") \
                and claim != hashlib.sha256(body).hexdigest():
            return False, "payload hash does not match the body", info
        amz_date = self.headers.get("X-Amz-Date", "")
        url = f"http://{self.headers['Host']}{self.path}"
        expected = _expected_signature(self.command, url, self.headers, info["signed"], akid, secret, token, region,
                                       service, amz_date, False)
        return (expected == signature), ("" if expected == signature else "signature mismatch"), info

    def verify_query(self, split, params):
        one = {k: v[0] for k, v in params.items()}
        cred = one.get("X-Amz-Credential", "").split("/")
        if len(cred) != 5:
            return False, "malformed X-Amz-Credential", {}
        akid, date, region, service, _ = cred
        token = one.get("X-Amz-Security-Token")
        info = {"form": "query", "akid": akid, "region": region, "service": service, "token": token,
                "signed": one.get("X-Amz-SignedHeaders", "").split(";"), "expires": one.get("X-Amz-Expires")}
        secret, why = self.check_key(akid, token)
        if secret is None:
            return False, why, info
        amz_date = one.get("X-Amz-Date", "")
        issued = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if issued.timestamp() + int(one.get("X-Amz-Expires", "0")) < time.time():
            return False, "presigned URL expired", info
        # What was signed: the URL without its signature.
        kept = "&".join(p for p in split.query.split("&") if not p.startswith("X-Amz-Signature="))
        url = f"http://{self.headers['Host']}{split.path}?{kept}"
        expected = _expected_signature(self.command, url, self.headers, info["signed"], akid, secret, token, region,
                                       service, amz_date, True)
        ok = expected == one.get("X-Amz-Signature")
        return ok, "" if ok else "signature mismatch", info


# --- temporary credentials ---------------------------------------------------------------------------

class Issuer:
    """Numbered temporary credentials for one fake; each is registered with the origin(s)."""

    def __init__(self, kind, lifetime, *origins):
        self.kind = kind
        self.lifetime = lifetime
        self.origins = origins
        self.issued = []
        self.lock = threading.Lock()

    def mint(self):
        with self.lock:
            n = len(self.issued) + 1
            c = {"AccessKeyId": f"ASIA{self.kind.upper()}{n:04d}",
                 "SecretAccessKey": f"{self.kind}-secret-CANARY-{n}",
                 "Token": f"{self.kind}-token-CANARY-{n}",
                 "Expiration": (datetime.datetime.now(datetime.timezone.utc)
                                + datetime.timedelta(seconds=self.lifetime)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            self.issued.append(c)
        for o in self.origins:
            o.keys[c["AccessKeyId"]] = (c["SecretAccessKey"], c["Token"])
        return c

    def canaries(self):
        with self.lock:
            return [v for c in self.issued for v in (c["SecretAccessKey"], c["Token"])]


class FakeSTS(_Server):
    def __init__(self, issuer, role_arn, web_token):
        super().__init__(_STSHandler)
        self.issuer, self.role_arn, self.web_token = issuer, role_arn, web_token


class _STSHandler(_Handler):
    def do_POST(self):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.body().decode()).items()}
        ok = (form.get("Action") == "AssumeRoleWithWebIdentity" and form.get("Version") == "2011-06-15"
              and form.get("RoleArn") == self.server.role_arn and form.get("WebIdentityToken") == self.server.web_token
              and bool(form.get("RoleSessionName")) and self.headers.get("Authorization") is None)
        self.server.record(ok=ok, session=form.get("RoleSessionName"))
        if not ok:
            return self.reply(403, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                                   "<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>"
                                   "</Error></ErrorResponse>", "text/xml")
        c = self.server.issuer.mint()
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
               "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:ns:sa"
               "</SubjectFromWebIdentityToken><Credentials>"
               f"<SessionToken>{c['Token']}</SessionToken><SecretAccessKey>{c['SecretAccessKey']}</SecretAccessKey>"
               f"<Expiration>{c['Expiration']}</Expiration><AccessKeyId>{c['AccessKeyId']}</AccessKeyId>"
               "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>")
        self.reply(200, xml, "text/xml")


class FakeContainerEndpoint(_Server):
    def __init__(self, issuer, auth_token, path="/v2/credentials/task"):
        super().__init__(_ContainerHandler)
        self.issuer, self.auth_token, self.path = issuer, auth_token, path


class _ContainerHandler(_Handler):
    def do_GET(self):
        ok = self.path == self.server.path and self.headers.get("Authorization") == self.server.auth_token
        self.server.record(ok=ok, path=self.path)
        if not ok:
            return self.reply(401, {"message": "unauthorized"})
        c = self.server.issuer.mint()
        self.reply(200, {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                         "Token": c["Token"], "Expiration": c["Expiration"], "RoleArn": "arn:aws:iam::1:role/task"})


class FakeIMDS(_Server):
    ROLE = "iron-proxy-instance-role"

    def __init__(self, issuer):
        super().__init__(_IMDSHandler)
        self.issuer = issuer
        self.tokens = set()


class _IMDSHandler(_Handler):
    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.server.record(kind="token", ok=bool(ok))
        if not ok:
            return self.reply(400, "", "text/plain")
        token = f"imds-session-{len(self.server.calls)}"
        self.server.tokens.add(token)
        self.reply(200, token, "text/plain")

    def do_GET(self):
        base = "/latest/meta-data/iam/security-credentials/"
        if self.headers.get("X-aws-ec2-metadata-token") not in self.server.tokens:
            self.server.record(kind="get", ok=False, path=self.path)
            return self.reply(401, "", "text/plain")  # IMDSv1 is off on this instance
        self.server.record(kind="get", ok=True, path=self.path)
        if self.path == base:
            return self.reply(200, FakeIMDS.ROLE, "text/plain")
        if self.path == base + FakeIMDS.ROLE:
            c = self.server.issuer.mint()
            return self.reply(200, {"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC", **c})
        self.reply(404, "", "text/plain")
