"""Stand-ins for the token endpoints the token-minting transforms call, speaking the real wire
formats, started by the tests on loopback:

OAuthServer — an RFC 6749 token endpoint (POST /token, application/x-www-form-urlencoded, client
  authentication in the form): grants refresh_token (rotating the refresh token when `rotate`),
  client_credentials, password, and RFC 7523 jwt_bearer, whose assertion's RS256 signature is
  verified with the registered public key (python3-cryptography) along with iss/sub/aud/exp/kid.
  Errors are RFC 6749 5.2 JSON ({"error": "invalid_grant"} …).
GoogleServer — Google's token_uri (POST /token: a service account's signed JWT, verified with the
  keyfile's public key; scope → access_token, target_audience → a signed id_token) and the GCE
  metadata server (GET /computeMetadata/v1/instance/service-accounts/default/token, which needs
  `Metadata-Flavor: Google`).

`mode` (settable while running): "ok", "status:N" (status N, a plain-text body, as a gateway answers), "error:CODE"
(400 {"error": CODE}), "slow:S" (answer after S seconds), "garbage" (200, not JSON).
`expires_in` sets the lifetime of issued tokens. Every call is recorded in `calls` (path, form,
headers, verified claims). Issued tokens are in `issued`; each contains "CANARY" so a test can
prove none reaches a log, an audit record or a response.
"""
import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def new_rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def verify_rs256(jwt: str, public_key):
    """(header, claims) of a JWT whose RS256 signature verifies with `public_key`; raises otherwise."""
    head, body, sig = jwt.split(".")
    public_key.verify(b64url_decode(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    header = json.loads(b64url_decode(head))
    assert header["alg"] == "RS256", header
    return header, json.loads(b64url_decode(body))


def sign_rs256(claims: dict, key) -> str:
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(sig)}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._handle(b"")

    def do_POST(self):
        self._handle(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _handle(self, raw):
        srv = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        call = {"method": self.command, "path": url.path, "query": dict(urllib.parse.parse_qsl(url.query)),
                "form": form, "headers": dict(self.headers.items())}
        with srv.lock:
            srv.calls.append(call)
            mode = srv.mode
        if mode.startswith("slow:"):
            time.sleep(float(mode[5:]))
        elif mode.startswith("status:"):
            return self._send_raw(int(mode[7:]), b"service unavailable", "text/plain")
        elif mode.startswith("error:"):
            return self._send(400, {"error": mode[6:], "error_description": "refused by the test endpoint"})
        elif mode == "garbage":
            return self._send_raw(200, b"<html>not a token</html>", "text/html")
        status, body = srv.answer(call)
        self._send(status, body)

    def _send(self, status, obj):
        self._send_raw(status, json.dumps(obj).encode(), "application/json")

    def _send_raw(self, status, data, ctype):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass


class _Server:
    def __init__(self, host="127.0.0.1", tls_context=None):
        self.lock = threading.Lock()
        self.calls = []
        self.issued = []
        self.mode = "ok"
        self.expires_in = 3600
        self._httpd = ThreadingHTTPServer((host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        if tls_context is not None:
            self._httpd.socket = tls_context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.url = f"{'https' if tls_context else 'http'}://{host}:{self.port}"
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def token_calls(self):
        with self.lock:
            return [c for c in self.calls if c["path"].endswith("/token")]

    def issue(self, prefix="at"):
        tok = f"{prefix}-CANARY-{len(self.issued)}-{secrets.token_hex(8)}"
        with self.lock:
            self.issued.append(tok)
        return tok

    def access_token(self, extra=None):
        body = {"access_token": self.issue(), "token_type": "Bearer", "expires_in": self.expires_in}
        body.update(extra or {})
        return 200, body


class OAuthServer(_Server):
    """clients: {client_id: client_secret or None}; users: {username: password}; refresh_tokens: the
    valid ones; jwt_issuers: {issuer: (public_key, kid, audience)}."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.clients = {}
        self.users = {}
        self.refresh_tokens = set()
        self.rotate = False
        self.jwt_issuers = {}

    def _client_ok(self, form, need_secret):
        cid = form.get("client_id")
        if cid not in self.clients:
            return False
        want = self.clients[cid]
        return form.get("client_secret") == want if (need_secret or want) else "client_secret" not in form

    def answer(self, call):
        form = call["form"]
        grant = form.get("grant_type")
        if call["method"] != "POST" or call["headers"].get("Content-Type") != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request"}
        if grant == "client_credentials":
            return self.access_token() if self._client_ok(form, True) else (401, {"error": "invalid_client"})
        if grant == "password":
            if not self._client_ok(form, False):
                return 401, {"error": "invalid_client"}
            if self.users.get(form.get("username")) != form.get("password"):
                return 400, {"error": "invalid_grant"}
            return self.access_token()
        if grant == "refresh_token":
            if not self._client_ok(form, False):
                return 401, {"error": "invalid_client"}
            rt = form.get("refresh_token")
            with self.lock:
                if rt not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant"}
                extra = None
                if self.rotate:  # one-time refresh tokens, as some providers issue
                    self.refresh_tokens.discard(rt)
                    new = f"rt-CANARY-rotated-{secrets.token_hex(6)}"
                    self.refresh_tokens.add(new)
                    extra = {"refresh_token": new}
            return self.access_token(extra)
        if grant == JWT_BEARER:
            header, claims = None, None
            for issuer, (pub, kid, aud) in self.jwt_issuers.items():
                try:
                    header, claims = verify_rs256(form["assertion"], pub)
                except Exception:
                    continue
                ok = (claims.get("iss") == issuer and claims.get("aud") == aud and claims["exp"] > time.time()
                      and claims["iat"] <= time.time() + 5 and header.get("kid") == kid)
                call["claims"], call["jwt_header"] = claims, header
                return self.access_token() if ok else (400, {"error": "invalid_grant"})
            return 400, {"error": "invalid_grant"}
        return 400, {"error": "unsupported_grant_type"}


class GoogleServer(_Server):
    """accounts: {client_email: public_key} (service-account keys it trusts)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.accounts = {}
        self.google_key, _ = new_rsa_key()  # signs the ID tokens it issues

    @property
    def token_uri(self):
        return f"{self.url}/token"

    def keyfile(self, email, pem, key_id="kid-1"):
        return json.dumps({"type": "service_account", "project_id": "proj", "private_key_id": key_id,
                           "private_key": pem, "client_email": email, "client_id": "1234",
                           "token_uri": self.token_uri})

    def answer(self, call):
        if call["path"].startswith("/computeMetadata/v1/instance/service-accounts/"):
            if call["headers"].get("Metadata-Flavor") != "Google":
                return 403, {"error": "missing Metadata-Flavor"}
            if call["path"].endswith("/token"):
                return self.access_token()
            return 404, {"error": "not found"}
        form = call["form"]
        if call["path"] != "/token" or form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type"}
        head = json.loads(b64url_decode(form["assertion"].split(".")[0]))
        claims = json.loads(b64url_decode(form["assertion"].split(".")[1]))
        pub = self.accounts.get(claims.get("iss"))
        if pub is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown account"}
        try:
            _, claims = verify_rs256(form["assertion"], pub)
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        call["claims"], call["jwt_header"] = claims, head
        if claims.get("aud") != self.token_uri or claims["exp"] <= time.time():
            return 400, {"error": "invalid_grant"}
        if "target_audience" in claims:
            now = int(time.time())
            tok = sign_rs256({"iss": "https://accounts.google.com", "aud": claims["target_audience"],
                              "sub": "1234", "email": claims["iss"], "iat": now,
                              "exp": now + self.expires_in, "canary": self.issue("idt")}, self.google_key)
            with self.lock:
                self.issued.append(tok)
            return 200, {"id_token": tok}
        if not claims.get("scope"):
            return 400, {"error": "invalid_scope"}
        return self.access_token()
