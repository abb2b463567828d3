"""Local stand-ins for the secret stores the proxy reads, each speaking the real wire format:
AWS Secrets Manager and SSM Parameter Store (JSON-1.1 over POST /, X-Amz-Target; every request's
SigV4 signature is verified with botocore, an independent implementation), 1Password Connect
(REST under /v1 with a bearer token) and Google Secret Manager (versions/…:access). Each records
its calls and can be told to fail."""
import base64
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StoreServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.calls = []          # one dict per request: target/path, ok, detail
        self.fail_with = None    # (status, body dict) answered to every call while set
        self.thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

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


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, ctype="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


# --- AWS ---------------------------------------------------------------------------------------------

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def verify_sigv4(method, path, headers, body, secret_key):
    """Recomputes the request's signature with botocore from what was received and returns
    (ok, detail, scope). Only the headers the client listed as signed are given to botocore, as
    AWS's own verifier does."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = headers.get("Authorization", "")
    m = AUTH_RE.match(auth)
    if not m:
        return False, f"malformed Authorization: {auth[:60]!r}", None
    akid, date, region, service, signed, signature = m.groups()
    amz_date = headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        return False, "X-Amz-Date does not match the credential scope", None
    names = signed.split(";")
    for required in ("host", "x-amz-date", "x-amz-target", "content-type"):
        if required not in names:
            return False, f"{required} is not signed", None
    req = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body)
    for name in names:
        values = headers.get_all(name) or []
        if not values:
            return False, f"signed header {name} is missing", None
        req.headers[name] = ",".join(values)
    token = headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(Credentials(akid, secret_key, token), service, region)
    req.context["timestamp"] = amz_date
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if expected != signature:
        return False, "signature mismatch", None
    return True, "", {"akid": akid, "region": region, "service": service, "token": token}


class AWSStore(StoreServer):
    """Secrets Manager (GetSecretValue) and SSM (GetParameter) on one endpoint."""

    def __init__(self, secret_keys):
        super().__init__(_AWSHandler)
        self.secret_keys = dict(secret_keys)  # access key id → secret access key
        self.secrets = {}                     # SecretId → SecretString
        self.parameters = {}                  # Name → Value


class _AWSHandler(_Base):
    def do_POST(self):
        body = self.body()
        target = self.headers.get("X-Amz-Target", "")
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        key = self.server.secret_keys.get(m.group(1)) if m else None
        if key is None:
            self.server.record(target=target, ok=False, detail="unknown access key")
            return self.reply(400, {"__type": "UnrecognizedClientException",
                                    "message": "The security token included in the request is invalid."})
        ok, detail, scope = verify_sigv4("POST", self.path, self.headers, body, key)
        if not ok:
            self.server.record(target=target, ok=False, detail=detail)
            return self.reply(400, {"__type": "InvalidSignatureException", "message": detail})
        if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            self.server.record(target=target, ok=False, detail="content-type")
            return self.reply(400, {"__type": "SerializationException", "message": "bad content type"})
        args = json.loads(body or b"{}")
        self.server.record(target=target, ok=True, detail="", scope=scope, args=args)
        if self.server.fail_with:
            return self.reply(*self.server.fail_with)
        if target == "secretsmanager.GetSecretValue":
            sid = args.get("SecretId")
            if sid not in self.server.secrets:
                return self.reply(400, {"__type": "ResourceNotFoundException",
                                        "message": "Secrets Manager can't find the specified secret."})
            return self.reply(200, {"ARN": f"arn:aws:secretsmanager:{scope['region']}:123456789012:secret:{sid}",
                                    "Name": sid, "SecretString": self.server.secrets[sid],
                                    "VersionId": "v1", "VersionStages": ["AWSCURRENT"]})
        if target == "AmazonSSM.GetParameter":
            name = args.get("Name")
            if name not in self.server.parameters:
                return self.reply(400, {"__type": "ParameterNotFound"})
            value = self.server.parameters[name] if args.get("WithDecryption") else "AQICAHencrypted-blob"
            return self.reply(200, {"Parameter": {"Name": name, "Type": "SecureString", "Value": value,
                                                  "Version": 1, "DataType": "text"}})
        return self.reply(400, {"__type": "UnknownOperationException"})


# --- 1Password Connect -------------------------------------------------------------------------------

class OnePasswordConnect(StoreServer):
    """Vaults and items as Connect's REST API returns them (GET /v1/vaults?filter=name eq "…",
    /v1/vaults/{id}, /v1/vaults/{id}/items?filter=title eq "…", /v1/vaults/{id}/items/{id})."""

    def __init__(self, token):
        super().__init__(_OPHandler)
        self.token = token
        self.vaults = {}  # id → {"id", "name", "items": {id: item}}

    def add_item(self, vault_id, vault_name, item):
        v = self.vaults.setdefault(vault_id, {"id": vault_id, "name": vault_name, "items": {}})
        v["items"][item["id"]] = item


class _OPHandler(_Base):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.server.record(path=url.path, ok=False)
            return self.reply(401, {"status": 401, "message": "Invalid token signature"})
        self.server.record(path=url.path, query=url.query, ok=True)
        if self.server.fail_with:
            return self.reply(*self.server.fail_with)
        flt = urllib.parse.parse_qs(url.query).get("filter", [""])[0]
        parts = url.path.strip("/").split("/")
        vaults = self.server.vaults
        if parts == ["v1", "vaults"]:
            m = re.fullmatch(r'name eq "(.*)"', flt)
            found = [{"id": v["id"], "name": v["name"]} for v in vaults.values() if not m or v["name"] == m.group(1)]
            return self.reply(200, found)
        if len(parts) >= 3 and parts[:2] == ["v1", "vaults"]:
            v = vaults.get(parts[2])
            if v is None:
                return self.reply(404, {"status": 404, "message": "vault not found"})
            if len(parts) == 3:
                return self.reply(200, {"id": v["id"], "name": v["name"]})
            if len(parts) == 4 and parts[3] == "items":
                m = re.fullmatch(r'title eq "(.*)"', flt)
                found = [{"id": i["id"], "title": i["title"], "vault": {"id": v["id"]}}
                         for i in v["items"].values() if not m or i["title"] == m.group(1)]
                return self.reply(200, found)
            if len(parts) == 5 and parts[3] == "items":
                item = v["items"].get(parts[4])
                if item is None:
                    return self.reply(404, {"status": 404, "message": "item not found"})
                return self.reply(200, item)
        return self.reply(404, {"status": 404, "message": "not found"})


# --- Google Secret Manager ---------------------------------------------------------------------------

class GoogleSecretManager(StoreServer):
    """GET /v1/projects/{p}/secrets/{s}/versions/{v}:access with a bearer token →
    {"name": …, "payload": {"data": base64, "dataCrc32c": …}}."""

    def __init__(self, token, public_key=None, client_email=None):
        super().__init__(_GSMHandler)
        self.token = token
        self.versions = {}  # "projects/p/secrets/s/versions/v" → bytes
        # POST /token: the service-account JWT exchange (RFC 7523), its RS256 signature verified.
        self.public_key = public_key
        self.client_email = client_email
        self.token_requests = []


def _b64url_decode(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


class _GSMHandler(_Base):
    def do_POST(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        form = urllib.parse.parse_qs(self.body().decode())
        grant = form.get("grant_type", [""])[0]
        try:
            head, claims, sig = form["assertion"][0].split(".")
            self.server.public_key.verify(_b64url_decode(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
            c = json.loads(_b64url_decode(claims))
            h = json.loads(_b64url_decode(head))
            ok = (grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and h.get("alg") == "RS256"
                  and c.get("iss") == self.server.client_email and c.get("aud") == f"{self.server.url}/token"
                  and c.get("scope") == "https://www.googleapis.com/auth/cloud-platform"
                  and c.get("exp", 0) - c.get("iat", 0) <= 3600)
        except Exception as e:  # noqa: BLE001 - any malformed assertion is a refusal
            ok, c = False, {"error": str(e)}
        self.server.token_requests.append({"ok": ok, "claims": c})
        if not ok:
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        return self.reply(200, {"access_token": self.server.token, "expires_in": 3599, "token_type": "Bearer"})

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.server.record(path=path, ok=False)
            return self.reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                              "status": "UNAUTHENTICATED"}})
        self.server.record(path=path, ok=True)
        if self.server.fail_with:
            return self.reply(*self.server.fail_with)
        m = re.fullmatch(r"/v1/(projects/[^/]+/secrets/[^/]+/versions/[^/:]+):access", path)
        if not m or m.group(1) not in self.server.versions:
            return self.reply(404, {"error": {"code": 404, "message": "Secret Version not found", "status": "NOT_FOUND"}})
        data = self.server.versions[m.group(1)]
        return self.reply(200, {"name": m.group(1), "payload": {"data": base64.b64encode(data).decode()}})
