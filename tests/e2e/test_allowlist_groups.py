"""`allowlist: groups: [...]`: named rule groups admit what the real clients of each ecosystem
contact (pip, git, npm through the tunnel listener against a local stand-in registry that the test
DNS names pypi.org, github.com, registry.npmjs.org, ...), and nothing else; unknown names are config
errors listing the known groups; `iron-proxy allowlist groups [NAME]` lists them."""
import pytest

from harness import clients, workload
from harness.proxy import run_binary
from harness.registry import RegistryServer

NAMES = ["pypi.org", "files.pythonhosted.org", "github.com", "codeload.github.com", "registry.npmjs.org",
         "proxy.golang.org", "sum.golang.org", "index.crates.io", "static.rust-lang.org", "rubygems.org",
         "repo1.maven.org", "registry-1.docker.io", "production.cloudflare.docker.com", "cdn01.quay.io",
         "api.anthropic.com", "api.openai.com", "deb.debian.org", "security.ubuntu.com", "not-in-a-group.test"]


@pytest.fixture
def registry(upstream_pki, dns_server, tmp_path):
    for n in NAMES:
        dns_server.set(n, ["127.0.0.2"])
    reg = RegistryServer(upstream_pki, tmp_path, NAMES).start()
    for n in NAMES:
        reg.put(n, "/probe", f"{n}\n")
    yield reg
    reg.stop()


def group_proxy(proxy_factory, groups, **kw):
    return proxy_factory.start(transforms=[{"name": "allowlist", "config": {"groups": groups, **kw}}])


def test_pip_with_the_pypi_group(proxy_factory, registry, ca_cert, tmp_path):
    registry.add_pypi_package()
    proxy = group_proxy(proxy_factory, ["PyPI"])  # names are case-insensitive
    r = workload.pip_download(tmp_path, proxy.tunnel_url, ca_cert, registry.url("pypi.org", "/simple"), "demo-pkg",
                              tmp_path / "wheels")
    assert r.returncode == 0, r.stdout + r.stderr
    assert list((tmp_path / "wheels").glob("demo_pkg-1.0-*.whl"))
    assert registry.seen("files.pythonhosted.org") == 1  # the wheel came from the file CDN


def test_pip_without_the_group_is_denied(proxy_factory, registry, ca_cert, tmp_path):
    registry.add_pypi_package()
    proxy = group_proxy(proxy_factory, ["github"])
    r = workload.pip_download(tmp_path, proxy.tunnel_url, ca_cert, registry.url("pypi.org", "/simple"), "demo-pkg",
                              tmp_path / "wheels")
    assert r.returncode != 0
    assert registry.seen("pypi.org") == 0


def test_git_clone_with_the_github_group(proxy_factory, registry, ca_cert, tmp_path):
    registry.add_git_repo(tmp_path)
    proxy = group_proxy(proxy_factory, ["github"])
    r = workload.git_clone(tmp_path, proxy.tunnel_url, ca_cert, registry.url("github.com", "/org/repo.git"),
                           tmp_path / "clone")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "clone" / "README").read_text() == "hello from git\n"


def test_npm_install_with_the_node_group(proxy_factory, registry, ca_cert, tmp_path):
    registry.add_npm_package()
    proxy = group_proxy(proxy_factory, ["node"])
    r = workload.npm_install(tmp_path, proxy.tunnel_url, ca_cert, registry.url("registry.npmjs.org", "/"),
                             "demo-npm-pkg", tmp_path / "app")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert (tmp_path / "app" / "node_modules" / "demo-npm-pkg" / "index.js").exists()


# The hosts each group's clients contact (go mod's proxy and sumdb, cargo's sparse index and rustup,
# bundler, Maven Central, a Docker Hub and a Quay pull with their blob CDNs, the LLM APIs, apt):
# each admitted by its group only.
GROUP_HOSTS = {
    "go": ["proxy.golang.org", "sum.golang.org"],
    "rust": ["index.crates.io", "static.rust-lang.org"],
    "ruby": ["rubygems.org"],
    "java": ["repo1.maven.org"],
    "docker": ["registry-1.docker.io", "production.cloudflare.docker.com", "cdn01.quay.io"],
    "anthropic": ["api.anthropic.com"],
    "openai": ["api.openai.com"],
    "apt": ["deb.debian.org"],
    "ubuntu": ["security.ubuntu.com"],
}


@pytest.mark.parametrize("group", sorted(GROUP_HOSTS))
def test_group_admits_its_hosts_only(proxy_factory, registry, ca_cert, group):
    proxy = group_proxy(proxy_factory, [group], domains=["not-in-a-group.test"])
    urls = {h: registry.url(h, "/probe") for hs in GROUP_HOSTS.values() for h in hs}
    for host, url in urls.items():
        r = clients.curl(url, proxy=proxy.tunnel_url, cacert=ca_cert)
        if host in GROUP_HOSTS[group]:
            assert r.http_code == 200 and r.text == f"{host}\n", (host, r)
        else:
            assert r.http_connect == 403, (host, r)
    # The flat domains still apply beside the group.
    assert clients.curl(registry.url("not-in-a-group.test", "/probe"), proxy=proxy.tunnel_url,
                        cacert=ca_cert).http_code == 200


def test_unknown_group_is_a_config_error(bed, proxy_factory, tmp_path):
    cfg = proxy_factory.config(transforms=[{"name": "allowlist", "config": {"groups": ["pypi", "nosuch"]}}])
    from harness.yamlgen import dump
    path = tmp_path / "bad.yaml"
    path.write_text(dump(cfg))
    r = run_binary(["-check", "-config", str(path)])
    assert r.returncode == 1
    assert 'unknown allowlist group "nosuch" (known groups: anthropic, apt, docker, foundry, github, go, ' in r.stderr
    assert "transforms[0].config.groups[1]" in r.stderr


def test_allowlist_groups_command():
    listing = run_binary(["allowlist", "groups"])
    assert listing.returncode == 0
    names = [l.split()[0] for l in listing.stdout.splitlines()]
    assert names == sorted(["github", "apt", "node", "pypi", "go", "rust", "ruby", "java", "docker", "ubuntu",
                            "openai", "anthropic", "homebrew", "foundry", "misc"])
    one = run_binary(["allowlist", "groups", "Node"])
    assert one.returncode == 0
    assert any(l.startswith("domain  *.npmjs.org") and "# registry.npmjs.org" in l for l in one.stdout.splitlines())
    gh = run_binary(["allowlist", "groups", "github"]).stdout
    assert "cidr    140.82.112.0/20" in gh and "SSH" in gh
    bad = run_binary(["allowlist", "groups", "nosuch"])
    assert bad.returncode == 1 and "known groups: anthropic" in bad.stderr
