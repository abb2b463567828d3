"""Config loading and the command line: -check, flag spellings, version, and config errors that
name file:line:col and the key path. Every bad config must fail both `-check` and a
normal start, with one `error: ...` line on stderr and a non-zero exit."""
import re
import socket
import time

import pytest

from harness import yamlgen
from harness.proxy import ProxyProcess, run_binary

POSITION = re.compile(r"\.yaml:(\d+):(\d+):")


def _base_text(bed, **proxy_extra):
    """A valid config as YAML text (all listeners on port 0)."""
    proxy = {"http_listen": "127.0.0.1:0", "https_listen": "127.0.0.1:0",
             "tunnel_listen": "127.0.0.1:0", "upstream_deny_cidrs": ["169.254.169.254/32"]}
    proxy.update(proxy_extra)
    return yamlgen.dump({
        "dns": {"enabled": False, "upstream_resolver": bed.dns_addr},
        "proxy": proxy,
        "tls": {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)},
        "metrics": {"listen": "127.0.0.1:0"},
        "transforms": [{"name": "allowlist", "config": {"domains": ["allowed.test"]}}],
    })


def _line_of(text, needle, occurrence=1):
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return i
    raise AssertionError(f"{needle!r} not in config text")


def _error_line(stderr):
    lines = [l for l in stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, f"expected exactly one 'error: ' line on stderr, got:\n{stderr}"
    return lines[0]


def _start_must_fail(path, proxy_factory):
    """Normal start with a bad config: must exit non-zero (bounded), never become ready."""
    p = ProxyProcess(proxy_factory.bed.workdir, None, args=["-config", str(path)],
                     name=f"bad-{path.stem}")
    proxy_factory.started.append(p)
    p.start(wait_ready=False)
    try:
        p.proc.wait(timeout=10)
    except Exception:
        pass
    code = p.stop()
    assert not any(r.get("msg") == "iron-proxy ready" for r in p.log_records()), p.stderr_text()
    assert code not in (None, 0), f"exit code {code}; stderr:\n{p.stderr_text()}"
    return p.stderr_text()


def _mutations(bed):
    """(id, text, expected line or None, substrings the message must contain)."""
    base = _base_text(bed)
    out = []

    text = base + "foo: 1\n"
    out.append(("unknown-top-level-key", text, _line_of(text, "foo: 1"), ['unknown key "foo"']))

    text = base.replace('  https_listen:', '  htps_listen: "127.0.0.1:0"\n  https_listen:')
    out.append(("unknown-nested-key", text, _line_of(text, "htps_listen"),
                ['unknown key "htps_listen"', "proxy"]))

    text = base.replace('  tunnel_listen:', '  http_listen: "127.0.0.1:0"\n  tunnel_listen:')
    out.append(("duplicate-key", text, _line_of(text, "http_listen", 2),
                ['duplicate key "http_listen"']))

    text = base.replace('"allowed.test"', '"allowed.test"\n        - "exa[mple.test"')
    out.append(("bad-glob", text, _line_of(text, "exa[mple"),
                ["invalid glob", "transforms[0].config.domains[1]"]))

    text = base.replace('"169.254.169.254/32"', '"1.2.3.4"')
    out.append(("bad-deny-cidr", text, _line_of(text, '"1.2.3.4"'),
                ['proxy.upstream_deny_cidrs[0]: invalid CIDR "1.2.3.4": must be CIDR notation']))

    text = base.replace('"allowed.test"', '"allowed.test"\n      cidrs:\n        - "10.0.0.300/8"')
    out.append(("bad-allowlist-cidr", text, _line_of(text, "10.0.0.300"),
                ["transforms[0].config.cidrs[0]"]))

    text = base.replace("      domains:", "      doman:\n        - \"x.test\"\n      domains:")
    out.append(("typo-in-transform-config", text, _line_of(text, "doman"), ['unknown key "doman"']))

    text = base.replace('  tunnel_listen:', '  upstream_response_header_timeout: "30"\n  tunnel_listen:')
    out.append(("duration-without-unit", text, _line_of(text, "upstream_response_header_timeout"),
                ["proxy.upstream_response_header_timeout"]))

    text = base.replace('  tunnel_listen:', '  max_request_body_bytes: "lots"\n  tunnel_listen:')
    out.append(("wrong-type", text, _line_of(text, "max_request_body_bytes"),
                ["proxy.max_request_body_bytes"]))

    text = base.replace('name: "allowlist"', 'name: "allowlst"')
    out.append(("unknown-transform", text, _line_of(text, "allowlst"), ["allowlst"]))
    return out


def _cases():
    # ids only; texts are built per test from the bed fixture
    return ["unknown-top-level-key", "unknown-nested-key", "duplicate-key", "bad-glob",
            "bad-deny-cidr", "bad-allowlist-cidr", "typo-in-transform-config",
            "duration-without-unit", "wrong-type", "unknown-transform"]


@pytest.mark.parametrize("case", _cases())
def test_bad_config_is_rejected_with_position(bed, proxy_factory, case):
    [(_, text, line, needles)] = [m for m in _mutations(bed) if m[0] == case]
    path = bed.workdir / f"{case}.yaml"
    path.write_text(text)

    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0, f"-check accepted a bad config:\n{text}\nstdout:{cp.stdout}"
    msg = _error_line(cp.stderr)
    m = POSITION.search(msg)
    assert m, f"no file:line:col in {msg!r}"
    assert str(path.name) in msg, msg
    assert int(m.group(1)) == line, f"expected line {line} in {msg!r}\n{text}"
    assert int(m.group(2)) >= 1
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"

    stderr = _start_must_fail(path, proxy_factory)
    msg2 = _error_line(stderr)
    assert POSITION.search(msg2), msg2
    for needle in needles:
        assert needle in msg2, f"{needle!r} not in {msg2!r}"


@pytest.mark.parametrize("which", ["ca_cert", "ca_key"])
def test_missing_ca_file_names_the_path(bed, proxy_factory, which):
    missing = bed.workdir / "nowhere" / f"missing-{which}.pem"
    text = _base_text(bed).replace(str(getattr(bed, which)), str(missing))
    path = bed.workdir / f"missing-{which}.yaml"
    path.write_text(text)
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0, cp
    assert str(missing) in _error_line(cp.stderr)
    stderr = _start_must_fail(path, proxy_factory)
    assert str(missing) in _error_line(stderr)


def test_empty_config_file_is_an_error(bed):
    path = bed.workdir / "empty.yaml"
    path.write_text("")
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0
    _error_line(cp.stderr)


def test_nonexistent_config_file(bed):
    path = bed.workdir / "does-not-exist.yaml"
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0
    assert str(path) in _error_line(cp.stderr)


@pytest.mark.parametrize("form", ["-config PATH", "--config PATH", "-config=PATH", "--config=PATH"])
def test_check_accepts_a_good_config(bed, form):
    path = bed.workdir / "good.yaml"
    path.write_text(_base_text(bed))
    args = ["-check"] + [a.replace("PATH", str(path)) for a in form.split(" ")]
    cp = run_binary(args)
    assert cp.returncode == 0, cp
    assert f"config OK: {path}" in cp.stdout + cp.stderr, cp


def test_check_does_not_bind_listeners(bed):
    """-check only validates: it must work even when the configured ports are taken."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        path = bed.workdir / "busy.yaml"
        path.write_text(_base_text(bed, http_listen=f"127.0.0.1:{s.getsockname()[1]}"))
        cp = run_binary(["-check", "-config", str(path)])
        assert cp.returncode == 0, cp
    finally:
        s.close()


def test_port_in_use_is_a_fatal_error(bed, proxy_factory):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        path = bed.workdir / "busy.yaml"
        path.write_text(_base_text(bed, http_listen=f"127.0.0.1:{port}"))
        stderr = _start_must_fail(path, proxy_factory)
        assert str(port) in _error_line(stderr)
    finally:
        s.close()


def test_version(iron_binary):
    cp = run_binary(["version"])
    assert cp.returncode == 0, cp
    # The bare version first (as the Go proxy prints it), then the commit and the build flags.
    lines = cp.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].strip() and " " not in lines[0], cp
    assert lines[1].startswith("commit: ") and len(lines[1]) > len("commit: "), cp
    assert lines[2].startswith("build: ") and "sanitizers: " in lines[2], cp
    for alias in ("--version", "-v"):
        cp2 = run_binary([alias])
        assert cp2.returncode == 0 and cp2.stdout == cp.stdout, (alias, cp2)


def test_sigterm_exits_zero(proxy):
    assert proxy.alive()
    t0 = time.monotonic()
    code = proxy.stop()
    assert code == 0, f"exit code {code} after SIGTERM"
    assert time.monotonic() - t0 < 5, "did not stop within 5 s of SIGTERM"


def test_example_config_is_valid(iron_binary, tmp_path):
    """examples/iron-proxy.yaml stays in sync with the schema."""
    from harness.paths import REPO_ROOT
    example = REPO_ROOT / "examples" / "iron-proxy.yaml"
    work = tmp_path / "example"
    work.mkdir()
    cp = run_binary(["generate-ca", "-outdir", str(work / "certs"), "-alg", "ecdsa-p256"])
    assert cp.returncode == 0, cp
    cp = run_binary(["-check", "-config", str(example)], cwd=str(work))
    assert cp.returncode == 0, cp


def test_a_listen_port_someone_listens_on_is_a_startup_error(proxy_factory):
    """The per-worker acceptors use SO_REUSEPORT, which would let the proxy silently share a port
    with another listener of the same user (and split its connections). Like the Go proxy, a
    port in use must refuse to start."""
    from harness.proxy import ProxyStartError
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even a sharing-willing holder
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        with pytest.raises(ProxyStartError) as e:
            proxy_factory.start(http_listen=f"127.0.0.1:{port}")
        assert "Address already in use" in str(e.value) and "exited with code 1" in str(e.value)
    finally:
        holder.close()


def test_two_listeners_on_one_port_are_a_startup_error(proxy_factory):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    from harness.proxy import ProxyStartError
    with pytest.raises(ProxyStartError) as e:
        proxy_factory.start(http_listen=f"127.0.0.1:{number}", tunnel_listen=f"127.0.0.1:{number}")
    assert "Address already in use" in str(e.value)


def _check_output_lines(cp):
    return [l for l in (cp.stdout + cp.stderr).splitlines() if l.strip()]


def test_check_prints_exactly_one_line(bed):
    """`-check` answers with one line: warnings met while building (a secret source that cannot
    be read yet) belong to a running proxy's log, not to the verdict."""
    text = _base_text(bed) + (
        "  - name: secrets\n"
        "    config:\n"
        "      secrets:\n"
        "        - source: {type: env, var: IRON_E2E_NEVER_SET}\n"
        "          rules: [{host: allowed.test}]\n"
        "          replace: {proxy_value: PH}\n")
    path = bed.workdir / "one-line.yaml"
    path.write_text(text)
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode == 0, cp
    assert _check_output_lines(cp) == [f"config OK: {path}"], cp

    bad = bed.workdir / "one-line-bad.yaml"
    bad.write_text(text.replace('"allowed.test"', '"exa[mple.test"', 1))
    cp = run_binary(["-check", "-config", str(bad)])
    assert cp.returncode == 1, cp
    lines = _check_output_lines(cp)
    assert len(lines) == 1 and lines[0].startswith("error: "), cp


@pytest.mark.parametrize("section", ["postgres"])
def test_refused_sections_name_their_position(bed, proxy_factory, section):
    """Sections this build refuses (they gate traffic) are errors with file:line:col like every
    other config error, from -check and from a normal start."""
    text = _base_text(bed) + f"{section}:\n  listen: ':5432'\n"
    path = bed.workdir / f"refused-{section}.yaml"
    path.write_text(text)
    line = _line_of(text, "listen: ':5432'")
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode == 1, cp
    msg = _error_line(cp.stderr)
    assert f"{path.name}:{line}:3: {section} (" in msg and "not yet supported" in msg, msg
    assert _check_output_lines(cp) == [msg]
    msg2 = _error_line(_start_must_fail(path, proxy_factory))
    assert f"{path.name}:{line}:3: {section} (" in msg2, msg2


@pytest.mark.parametrize("dns,expect", [
    ({"enabled": True, "listen": "127.0.0.1:0", "proxy_ip": "notanip"},
     'dns.proxy_ip: invalid proxy_ip (must be IPv4): "notanip"'),
    ({"enabled": True, "listen": "127.0.0.1:0", "proxy_ip": "::1"},
     'dns.proxy_ip: invalid proxy_ip (must be IPv4): "::1"'),
    ({"enabled": True, "listen": "nowhere", "proxy_ip": "10.0.0.1"}, "dns.listen: "),
])
def test_check_runs_every_startup_check(bed, proxy_factory, dns, expect):
    """`-check` OK must mean the proxy starts (ports aside): what the DNS server checks when it
    starts fails -check too, with the same message."""
    cfg = yamlgen.dump({
        "dns": dict(dns, upstream_resolver=bed.dns_addr),
        "proxy": {"http_listen": "127.0.0.1:0", "https_listen": "127.0.0.1:0",
                  "upstream_deny_cidrs": ["169.254.169.254/32"]},
        "tls": {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)},
        "metrics": {"listen": "127.0.0.1:0"},
        "transforms": [{"name": "allowlist", "config": {"domains": ["allowed.test"]}}],
    })
    path = bed.workdir / "dns-check.yaml"
    path.write_text(cfg)
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode == 1, cp
    msg = _error_line(cp.stderr)
    assert expect in msg, msg
    assert expect in _error_line(_start_must_fail(path, proxy_factory))
