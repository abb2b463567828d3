"""The .deb in a clean Debian 12 root, and the container image's runtime stage without a container
engine (none runs on this CI machine).

A debootstrapped bookworm minbase root (cached by date outside the repository: harness/packaging.py;
~3 minutes on the first run of a day, seconds after) is copied per test.
 * .deb: the package's Depends are installed with apt, then `dpkg -i` installs it; the packaged
   binary makes the CA the way the unit's ExecStartPre does and passes -check on the packaged
   config; its version is the package's.
 * image: the Dockerfile's runtime stage is replayed step by step in the root (its RUN commands,
   its COPYs with the freshly built binary in place of the build stage's, its USER), then the
   ENTRYPOINT + CMD runs as that user with a CA "mounted" at /etc/iron-proxy/tls, and the
   HEALTHCHECK command must pass against it.
Skipped, with the reason, without root or debootstrap, or with IRON_TEST_CHROOT=0."""
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness.packaging import Chroot, build_deb, chroot_skip_reason, debian_root, depends_names, project_version
from harness.paths import BINARY, REPO_ROOT
from harness.proxy import run_binary

pytestmark = pytest.mark.skipif(chroot_skip_reason() is not None, reason=chroot_skip_reason() or "")


@pytest.fixture
def chroot(tmp_path):
    root = debian_root(tmp_path / "root")
    c = Chroot(root)
    yield c
    c.close()
    shutil.rmtree(root, ignore_errors=True)  # ~200 MB a copy: pytest would keep three runs' worth


def unit_exec_start_pre():
    unit = (REPO_ROOT / "packaging/systemd/iron-proxy.service").read_text()
    line = re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1)
    return shlex.split(line.replace("%H", "test-host"))


def test_deb_installs_with_dpkg_and_checks_its_config(chroot, tmp_path):
    deb = build_deb(tmp_path / "deb")
    chroot.apt_install(depends_names(deb))
    shutil.copy(deb, chroot.root / "tmp" / deb.name)
    chroot.run("dpkg", "-i", f"/tmp/{deb.name}")
    status = chroot.run("dpkg-query", "-W", "-f=${Status} ${Version}", "iron-proxy").stdout
    assert status == f"install ok installed {project_version()}", status
    conffiles = chroot.run("dpkg-query", "-W", "-f=${Conffiles}", "iron-proxy").stdout
    assert "/etc/iron-proxy/proxy.yaml" in conffiles
    assert chroot.run("iron-proxy", "version").stdout.splitlines()[0] == project_version()
    # The unit's ExecStartPre makes the CA in the state directory (as the service's user, there).
    chroot.run("mkdir", "-p", "/var/lib/iron-proxy")
    chroot.run(*unit_exec_start_pre())
    assert (chroot.root / "var/lib/iron-proxy/ca.crt").exists()
    chroot.run(*unit_exec_start_pre())  # a second start keeps the CA
    cp = chroot.run("/usr/bin/iron-proxy", "-check", "-config", "/etc/iron-proxy/proxy.yaml")
    assert cp.stdout.strip() == "config OK: /etc/iron-proxy/proxy.yaml", cp
    for args in (["-h"], ["generate-ca", "-h"]):
        assert "Usage: iron-proxy" in chroot.run("iron-proxy", *args).stderr
    chroot.run("dpkg", "--purge", "iron-proxy")
    assert not (chroot.root / "usr/bin/iron-proxy").exists()
    assert not (chroot.root / "var/lib/iron-proxy").exists(), "purge removes the state directory (the CA)"


def runtime_stage():
    """The Dockerfile's last stage as (instruction, argument) pairs, continuation lines joined."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    steps = [tuple(l.strip().split(None, 1)) for l in text.splitlines() if l.strip()]
    last_from = max(i for i, s in enumerate(steps) if s[0] == "FROM")
    assert steps[last_from][1].strip() == "debian:12-slim", steps[last_from]
    return steps[last_from + 1:]


def replay_runtime_stage(chroot, binary):
    """RUN, COPY, ARG, USER, ENTRYPOINT, CMD, HEALTHCHECK of the runtime stage, in the root."""
    image = {"user": "0:0", "entrypoint": [], "cmd": [], "healthcheck": None}
    for op, arg in runtime_stage():
        if op == "RUN":
            chroot.run("/bin/sh", "-c", arg, timeout=600)
        elif op == "COPY":
            parts = arg.split()
            src, dst = parts[-2], parts[-1]
            path = binary if parts[0].startswith("--from=build") else REPO_ROOT / src
            target = chroot.root / dst.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        elif op == "USER":
            image["user"] = arg.strip()
        elif op in ("ENTRYPOINT", "CMD"):
            image[op.lower()] = json.loads(arg)
        elif op == "HEALTHCHECK":
            image["healthcheck"] = json.loads(arg.split("CMD", 1)[1])
        else:
            assert op in ("ARG", "LABEL", "VOLUME", "EXPOSE", "STOPSIGNAL"), op
    return image


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_container_runtime_stage_runs_as_non_root_and_is_healthy(chroot, tmp_path):
    stripped = tmp_path / "iron-proxy"
    shutil.copy2(BINARY, stripped)
    subprocess.run(["strip", "--strip-unneeded", str(stripped)], check=True)
    image = replay_runtime_stage(chroot, stripped)
    assert image["user"] == "10001:10001" and image["healthcheck"], image
    # The CA as a mounted secret: root-owned files the image's user can read.
    ca = tmp_path / "ca"
    assert run_binary(["generate-ca", "-outdir", str(ca), "-alg", "ecdsa-p256"]).returncode == 0
    tls = chroot.root / "etc/iron-proxy/tls"
    for name in ("ca.crt", "ca.key"):
        shutil.copy(ca / name, tls / name)
        (tls / name).chmod(0o440)
        shutil.chown(tls / name, "root", 10001)
    metrics = free_port()
    env = {"IRON_METRICS_LISTEN": f"127.0.0.1:{metrics}", "IRON_PROXY_HTTP_LISTEN": "127.0.0.1:0",
           "IRON_PROXY_HTTPS_LISTEN": "127.0.0.1:0", "IRON_PROXY_TUNNEL_LISTEN": "127.0.0.1:0"}
    command = image["entrypoint"] + image["cmd"]
    cp = chroot.run(*command[:1], "-check", *command[1:], user=image["user"], env=env)
    assert cp.stdout.startswith("config OK"), cp
    assert chroot.run(*command[:1], "version", user=image["user"]).stdout.splitlines()[0] == project_version()
    proc = chroot.popen(*command, user=image["user"], env=env)
    try:
        healthy = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            healthy = chroot.run(*image["healthcheck"], user=image["user"], env=env, check=False)
            if healthy.returncode == 0:
                break
            time.sleep(0.2)
        assert healthy is not None and healthy.returncode == 0, (healthy, proc.poll())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        err = proc.stderr.read().decode(errors="replace")
    assert code == 0, err[-3000:]
    assert '"msg":"iron-proxy ready"' in err
    # And the HEALTHCHECK fails once the proxy is gone (it checks something).
    assert chroot.run(*image["healthcheck"], user=image["user"], env=env, check=False).returncode != 0
