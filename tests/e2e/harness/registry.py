"""A package registry stand-in for the sandbox tests: one HTTPS static-file server on 127.0.0.2
answering for many names (pypi.org, github.com, registry.npmjs.org, ...; the test DNS points them
there), with builders for what real clients fetch from it: a PEP 503 index and a wheel (pip), a git
repository over the dumb HTTP protocol (git clone), an npm package (npm install). `.hosts` records the
Host of every request, so a test can tell which names a client really used."""
import base64
import hashlib
import io
import json
import subprocess
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import certs
from .paths import clean_env
from .upstream import server_tls_context


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        reg = self.server.registry
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        path = self.path.split("?")[0]
        with reg.lock:
            reg.hosts.append(host)
        item = reg.files.get((host, path)) or reg.files.get(("*", path))
        if item is None:
            body, ctype, status = b"not found\n", "text/plain", 404
        else:
            body, ctype = item
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


class RegistryServer:
    """HTTPS on 127.0.0.2:<port> with a certificate (from the upstream CA) for `names`."""

    def __init__(self, upstream_pki, outdir: Path, names):
        self.names = [n.lower() for n in names]
        pair = certs.make_server_cert(outdir, upstream_pki.ca, upstream_pki.ca_key, "registry", dns_names=self.names,
                                      ips=["127.0.0.2"])
        self.httpd = ThreadingHTTPServer(("127.0.0.2", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = server_tls_context(pair.cert_path, pair.key_path).wrap_socket(
            self.httpd.socket, server_side=True)
        self.httpd.registry = self
        self.port = self.httpd.server_address[1]
        self.files = {}
        self.hosts = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, host, path="/"):
        return f"https://{host}:{self.port}{path}"

    def put(self, host, path, body, ctype="application/octet-stream"):
        self.files[(host, path)] = (body if isinstance(body, bytes) else body.encode(), ctype)

    def seen(self, host):
        with self.lock:
            return self.hosts.count(host)

    # --- what the clients fetch ------------------------------------------------------------------
    def add_pypi_package(self, name="demo-pkg", version="1.0", index_host="pypi.org",
                         files_host="files.pythonhosted.org"):
        """A PEP 503 simple index on index_host and a pure-Python wheel on files_host."""
        module = name.replace("-", "_")
        wheel_name = f"{module}-{version}-py3-none-any.whl"
        wheel = _make_wheel(name, module, version)
        digest = hashlib.sha256(wheel).hexdigest()
        wheel_path = f"/packages/{wheel_name}"
        self.put(files_host, wheel_path, wheel)
        link = f'<a href="{self.url(files_host, wheel_path)}#sha256={digest}">{wheel_name}</a>'
        self.put(index_host, f"/simple/{name}/", f"<!DOCTYPE html><html><body>{link}</body></html>", "text/html")
        self.put(index_host, "/simple/", f'<html><body><a href="/simple/{name}/">{name}</a></body></html>', "text/html")
        return wheel_name

    def add_git_repo(self, workdir: Path, host="github.com", path="/org/repo.git", content="hello from git\n"):
        """A bare repository with one commit served over git's dumb HTTP protocol."""
        src, bare = workdir / "git-src", workdir / "git-bare.git"
        env = clean_env({"HOME": str(workdir), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
                         "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
        run = lambda *a, cwd=None: subprocess.run(a, cwd=cwd, env=env, check=True, capture_output=True, timeout=30)
        run("git", "init", "-q", "-b", "main", str(src))
        (src / "README").write_text(content)
        run("git", "add", "README", cwd=src)
        run("git", "commit", "-q", "-m", "first", cwd=src)
        run("git", "clone", "-q", "--bare", str(src), str(bare))
        run("git", "update-server-info", cwd=bare)
        for f in bare.rglob("*"):
            if f.is_file():
                self.put(host, f"{path}/{f.relative_to(bare).as_posix()}", f.read_bytes())

    def add_npm_package(self, name="demo-npm-pkg", version="1.0.0", host="registry.npmjs.org"):
        """A package document and its tarball, as the npm registry serves them."""
        pkg = {"name": name, "version": version, "main": "index.js"}
        tgz = _make_npm_tarball(pkg)
        tarball_path = f"/{name}/-/{name}-{version}.tgz"
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        doc = {"name": name, "dist-tags": {"latest": version}, "versions": {version: dict(pkg, dist={
            "tarball": self.url(host, tarball_path), "shasum": hashlib.sha1(tgz).hexdigest(), "integrity": integrity})}}
        self.put(host, f"/{name}", json.dumps(doc), "application/json")
        self.put(host, tarball_path, tgz)


def _make_wheel(name, module, version) -> bytes:
    dist = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: iron-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}\n"
        for p, b in files.items()) + f"{dist}/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p, b in files.items():
            z.writestr(p, b)
        z.writestr(f"{dist}/RECORD", record)
    return buf.getvalue()


def _make_npm_tarball(pkg) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("package/package.json", json.dumps(pkg).encode()),
                           ("package/index.js", b"module.exports = 42;\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
