"""Issue #16's loop end to end: profile a workload (curl, pip against a local index, git clone over
HTTPS) in warn mode, `iron-proxy allowlist suggest` from its audit log, append the suggestion to the
base config, enforce: the workload still passes, a host it never used is denied, and
`iron-proxy audit` shows both."""
import json
import subprocess

import pytest

from harness import clients, workload
from harness.configs import make_config
from harness.paths import BINARY
from harness.proxy import run_binary
from harness.registry import RegistryServer
from harness.yamlgen import dump

NAMES = ["pypi.org", "files.pythonhosted.org", "github.com", "api.workload.test", "new.workload.test"]


@pytest.fixture
def registry(upstream_pki, dns_server, tmp_path):
    for n in NAMES:
        dns_server.set(n, ["127.0.0.2"])
    reg = RegistryServer(upstream_pki, tmp_path, NAMES).start()
    reg.add_pypi_package()
    reg.add_git_repo(tmp_path)
    reg.put("api.workload.test", "/v1/ping", '{"ok":true}\n', "application/json")
    reg.put("new.workload.test", "/exfil", "secret\n")
    yield reg
    reg.stop()


def run_workload(reg, proxy, ca, tmp_path, tag):
    """The workload: one API call with curl, a pip download, a git clone. Returns the failures."""
    out = tmp_path / f"run-{tag}"
    out.mkdir()
    failures = []
    r = clients.curl(reg.url("api.workload.test", "/v1/ping"), proxy=proxy.tunnel_url, cacert=ca)
    if r.http_code != 200:
        failures.append(f"curl: {r}")
    pip = workload.pip_download(tmp_path, proxy.tunnel_url, ca, reg.url("pypi.org", "/simple"), "demo-pkg",
                                out / "wheels")
    if pip.returncode != 0 or not list((out / "wheels").glob("demo_pkg-1.0-*.whl")):
        failures.append(f"pip: {pip.stdout[-800:]} {pip.stderr[-800:]}")
    git = workload.git_clone(tmp_path, proxy.tunnel_url, ca, reg.url("github.com", "/org/repo.git"), out / "repo")
    if git.returncode != 0 or not (out / "repo" / "README").exists():
        failures.append(f"git: {git.stderr[-800:]}")
    return failures


def test_profile_suggest_enforce(bed, proxy_factory, registry, ca_cert, tmp_path):
    audit_path = tmp_path / "profile.audit.jsonl"
    base = make_config(bed, name="base", transforms=None)
    base.pop("transforms")
    base["log"]["audit_path"] = str(audit_path)
    base_yaml = tmp_path / "base.yaml"
    base_yaml.write_text(dump(base))

    # 1. Profile in warn mode: an empty allowlist that only warns.
    warn_text = base_yaml.read_text() + dump({"transforms": [{"name": "allowlist", "config": {"domains": [], "warn": True}}]})
    proxy = proxy_factory.start(config_text=warn_text, name="warn")
    assert run_workload(registry, proxy, ca_cert, tmp_path, "warn") == []
    proxy.stop()
    records = [json.loads(l) for l in audit_path.read_text().splitlines() if l.strip()]
    assert records and all(r["audit"]["action"] == "allow" for r in records)

    # 2. Suggest from the profile.
    sug = run_binary(["allowlist", "suggest", str(audit_path)])
    assert sug.returncode == 0, sug.stderr
    suggested = sug.stdout
    assert "groups:" in suggested and "- pypi" in suggested, suggested  # pypi.org + files.pythonhosted.org
    assert '"github.com"' in suggested and '"api.workload.test"' in suggested, suggested
    assert "new.workload.test" not in suggested
    assert "# partly seen: group github" in suggested, suggested
    (tmp_path / "suggested.yaml").write_text(suggested)

    # 3. cat base.yaml suggested.yaml > enforce.yaml, and it is a valid config.
    enforce = tmp_path / "enforce.yaml"
    enforce.write_text(base_yaml.read_text() + suggested)
    check = run_binary(["-check", "-config", str(enforce)])
    assert check.returncode == 0 and "config OK" in check.stdout, check.stdout + check.stderr

    # 4. Enforce: the workload passes, a new host is denied.
    audit_path.write_text("")
    proxy = proxy_factory.start(config_text=enforce.read_text(), name="enforce")
    assert run_workload(registry, proxy, ca_cert, tmp_path, "enforce") == []
    r = clients.curl(registry.url("new.workload.test", "/exfil"), proxy=proxy.tunnel_url, cacert=ca_cert)
    assert r.http_code != 200 and r.http_connect == 403, r
    assert registry.seen("new.workload.test") == 0
    proxy.stop()

    # 5. The audit reader shows the denial, and only it under -action reject.
    shown = run_binary(["audit", "-action", "reject", str(audit_path)])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 and "new.workload.test" in lines[0] and "reject" in lines[0], shown.stdout
    assert "allowlist" in lines[0] and "403" in lines[0]
