"""Building proxy configs (as dicts; ProxyProcess writes them as YAML)."""
from dataclasses import dataclass
from pathlib import Path

# Upstreams live on 127.0.0.2, which the proxy's *default* deny list (127.0.0.0/8) would block, so
# tests that need to reach them set an explicit list without loopback.
TEST_DENY_CIDRS = ["169.254.169.254/32"]
OMIT = object()  # pass as a value to leave the key out of the config


@dataclass
class TestBed:
    """What every proxy config in the suite refers to."""
    __test__ = False
    workdir: Path
    dns_addr: str
    ca_cert: Path
    ca_key: Path
    upstream_ca: Path


def make_config(bed: TestBed, *, name="proxy", http_listen="127.0.0.1:0", https_listen="127.0.0.1:0",
                tunnel_listen="127.0.0.1:0", domains=("allowed.test", "loop.test"), cidrs=None,
                rules=None, warn=None, transforms=OMIT, deny_cidrs=TEST_DENY_CIDRS,
                upstream_ca=True, audit=True, log_level="info", proxy_extra=None, tls_extra=None,
                extra=None) -> dict:
    """A config with all three listeners on loopback port 0 (override with a string or OMIT),
    the test resolver, the suite's proxy CA, and one allowlist transform."""
    proxy = {}
    for key, value in (("http_listen", http_listen), ("https_listen", https_listen),
                       ("tunnel_listen", tunnel_listen)):
        if value is not OMIT:
            proxy[key] = value
    if deny_cidrs is not OMIT:
        proxy["upstream_deny_cidrs"] = list(deny_cidrs)
    if upstream_ca:
        proxy["upstream_ca_file"] = str(bed.upstream_ca)
    proxy.update(proxy_extra or {})

    tls = {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)}
    tls.update(tls_extra or {})

    log = {"level": log_level}
    if audit:
        log["audit_path"] = str(bed.workdir / f"{name}.audit.jsonl")

    if transforms is OMIT:
        allow = {"domains": list(domains)}
        if cidrs is not None:
            allow["cidrs"] = list(cidrs)
        if rules is not None:
            allow["rules"] = list(rules)
        if warn is not None:
            allow["warn"] = warn
        transforms = [{"name": "allowlist", "config": allow}]

    cfg = {
        "dns": {"enabled": False, "upstream_resolver": bed.dns_addr},
        "proxy": proxy,
        "tls": tls,
        "log": log,
        "metrics": {"listen": "127.0.0.1:0"},
        "transforms": transforms,
    }
    for k, v in (extra or {}).items():
        cfg[k] = v
    return cfg


def allowlist_transform(*domains) -> dict:
    return {"name": "allowlist", "config": {"domains": list(domains)}}


def secret_header_transform(placeholder, *, var="E2E_SECRET", headers=("Authorization",),
                            host="allowed.test") -> dict:
    """A `secrets` transform replacing `placeholder` in the named headers with the value of the
    environment variable `var`, for `host` only (the current entry shape, see test_secrets.py)."""
    return {"name": "secrets", "config": {"secrets": [{
        "source": {"type": "env", "var": var},
        "rules": [{"host": host}],
        "replace": {"proxy_value": placeholder, "match_headers": list(headers)},
    }]}}
