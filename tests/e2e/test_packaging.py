"""The Debian package (scripts/package.sh: CPack over the normal build) checked from the outside,
without installing it: its files, conffiles, Depends, version, maintainer scripts; the packaged
config is the embedded default; the systemd unit passes `systemd-analyze verify`; every subcommand
has --help; the image (Dockerfile) and the chart carry the same version. Installing it into a
clean Debian 12 root is tests/e2e/test_deb_install.py."""
import re
import shutil
import subprocess

import pytest

from harness.packaging import build_deb, deb_field, depends_names, project_version
from harness.paths import REPO_ROOT
from harness.proxy import run_binary


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    root = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(root / "DEBIAN")], check=True)
    return root


def test_package_files_and_metadata(deb, unpacked):
    assert deb_field(deb, "Package") == "iron-proxy"
    assert deb_field(deb, "Version") == project_version()
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/bin/iron-proxy", "./etc/iron-proxy/proxy.yaml", "./lib/systemd/system/iron-proxy.service",
                 "./usr/share/doc/iron-proxy/copyright"):
        assert path in listing, path
    assert (unpacked / "DEBIAN" / "conffiles").read_text().split() == ["/etc/iron-proxy/proxy.yaml"]
    for script in ("postinst", "prerm", "postrm"):
        assert subprocess.run(["sh", "-n", str(unpacked / "DEBIAN" / script)]).returncode == 0, script
    assert "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" in \
        (unpacked / "usr/share/doc/iron-proxy/copyright").read_text()


def test_depends_come_from_dpkg_shlibdeps(deb):
    """Every shared library the binary loads is named: TLS, HTTP/2, DNS, YAML, gRPC, zlib."""
    names = depends_names(deb)
    for lib in ("libssl3", "libnghttp2-14", "libc-ares2", "libldns3", "libyaml-cpp0.7", "libgrpc++1.51",
                "libprotobuf32", "zlib1g", "libstdc++6", "libc6"):
        assert lib in names, (lib, names)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", n) for n in names), names


def test_packaged_binary_version_matches_package(unpacked):
    cp = subprocess.run([str(unpacked / "usr/bin/iron-proxy"), "version"], capture_output=True, text=True, timeout=20)
    assert cp.returncode == 0, cp
    lines = cp.stdout.splitlines()
    assert lines[0] == project_version()
    assert lines[1].startswith("commit: ") and lines[2].startswith("build: "), lines


def test_packaged_config_is_the_embedded_default_and_checks(unpacked, tmp_path):
    """The conffile is the binary's embedded default with the unit's state directory; with a CA
    there (the unit's ExecStartPre makes one) it passes -check. Loopback listeners only."""
    text = (unpacked / "etc/iron-proxy/proxy.yaml").read_text()
    assert '"/var/lib/iron-proxy/ca.crt"' in text and '"/var/lib/iron-proxy/ca.key"' in text
    for key in ("http_listen", "https_listen", "tunnel_listen", "listen"):
        for m in re.finditer(rf"^\s*{key}: \"([^\"]*)\"", text, re.M):
            assert m.group(1).startswith("127.0.0.1:"), m.group(0)
    assert re.search(r"^dns:\n(?:\s+#.*\n)*\s+enabled: false", text, re.M)
    assert run_binary(["generate-ca", "-outdir", str(tmp_path / "state")]).returncode == 0
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(text.replace("/var/lib/iron-proxy", str(tmp_path / "state")))
    cp = subprocess.run([str(unpacked / "usr/bin/iron-proxy"), "-check", "-config", str(cfg)],
                        capture_output=True, text=True, timeout=20)
    assert cp.returncode == 0 and cp.stdout.strip() == f"config OK: {cfg}", cp


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_verifies(unpacked, tmp_path):
    """`systemd-analyze verify` prints nothing: directives, sandboxing options and executables.
    verify wants ExecStart's binary where the unit says; it is pointed at the unpacked one."""
    unit = (unpacked / "lib/systemd/system/iron-proxy.service").read_text()
    checked = tmp_path / "iron-proxy.service"
    checked.write_text(unit.replace("/usr/bin/iron-proxy", str(unpacked / "usr/bin/iron-proxy")))
    cp = subprocess.run(["systemd-analyze", "verify", "--man=no", str(checked)], capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 0 and cp.stdout.strip() == "" and cp.stderr.strip() == "", cp
    for directive in ("Type=notify", "DynamicUser=yes", "StateDirectory=iron-proxy", "NoNewPrivileges=yes",
                      "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service",
                      "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                      "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
        assert re.search(rf"^{re.escape(directive)}$", unit, re.M), directive
    assert re.search(r"^RestrictAddressFamilies=.*AF_INET6", unit, re.M)
    assert re.search(r"^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN$", unit, re.M)


def test_unit_verify_catches_a_broken_unit(unpacked, tmp_path):
    """The check above can fail: an unknown directive is reported."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    unit = (unpacked / "lib/systemd/system/iron-proxy.service").read_text()
    broken = tmp_path / "iron-proxy.service"
    broken.write_text(unit.replace("/usr/bin/iron-proxy", str(unpacked / "usr/bin/iron-proxy"))
                      .replace("PrivateTmp=yes", "PrivateTmpp=yes"))
    cp = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True,
                        timeout=60)
    assert "PrivateTmpp" in cp.stdout + cp.stderr


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["generate-ca", "-h"], ["generate-ca", "--help"]])
def test_main_help_lists_every_subcommand(iron_binary, args):
    cp = run_binary(args)
    assert cp.returncode == 0, cp
    text = cp.stdout + cp.stderr
    assert "Usage: iron-proxy" in text
    for sub in ("generate-ca", "version", "-config", "-check"):
        assert sub in text, sub


@pytest.mark.parametrize("args", [["audit", "-h"], ["allowlist", "-h"], ["allowlist", "groups", "-h"],
                                  ["allowlist", "suggest", "-h"], ["egress", "-h"], ["egress", "add", "-h"]])
def test_every_subcommand_has_help(iron_binary, args):
    cp = run_binary(args)
    assert cp.returncode == 0, cp
    assert f"Usage: iron-proxy {args[0]}" in cp.stdout, cp


def test_image_and_chart_carry_the_package_version():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(rf"^ARG VERSION={re.escape(project_version())}$", dockerfile, re.M)
    chart = (REPO_ROOT / "charts/iron-proxy/Chart.yaml").read_text()
    assert re.search(rf'^appVersion: "{re.escape(project_version())}"$', chart, re.M)
