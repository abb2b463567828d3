"""`iron-proxy generate-ca`: files, modes, refusal to overwrite, algorithms, and
that the CA it writes works as the proxy CA end to end."""
import datetime
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import certs, clients
from harness.proxy import run_binary

ALGS = {
    "ecdsa-p256": (ec.EllipticCurvePrivateKey, None),
    "rsa2048": (rsa.RSAPrivateKey, 2048),
    "rsa4096": (rsa.RSAPrivateKey, 4096),
    "ed25519": (ed25519.Ed25519PrivateKey, None),
}


def _generate(outdir, *extra, timeout=60):
    return run_binary(["generate-ca", "-outdir", str(outdir), *extra], timeout=timeout)


def _check_ca(outdir, key_type, key_bits):
    crt, key = outdir / "ca.crt", outdir / "ca.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(crt).st_mode) == 0o644
    cert = certs.load_cert(crt)
    priv = certs.load_key(key)
    assert isinstance(priv, key_type)
    if key_bits:
        assert priv.key_size == key_bits
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is True and bc.critical
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign
    assert "PRIVATE KEY" in key.read_text().splitlines()[0]
    return cert


def test_generate_ca_files_and_output(iron_binary, tmp_path):
    out = tmp_path / "new-dir"  # created if missing
    cp = _generate(out, "-alg", "ecdsa-p256")
    assert cp.returncode == 0, cp
    assert f"wrote {out / 'ca.crt'}" in cp.stdout
    assert f"wrote {out / 'ca.key'}" in cp.stdout
    _check_ca(out, ec.EllipticCurvePrivateKey, None)


def test_generate_ca_defaults(iron_binary, tmp_path):
    cp = _generate(tmp_path)
    assert cp.returncode == 0, cp
    cert = _check_ca(tmp_path, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                                ed25519.Ed25519PrivateKey), None)
    assert cert.subject.rfc4514_string() == "CN=iron-proxy CA"


def test_generate_ca_refuses_to_overwrite(iron_binary, tmp_path):
    assert _generate(tmp_path, "-alg", "ecdsa-p256").returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "ca.crt", tmp_path / "ca.key")}
    cp = _generate(tmp_path, "-alg", "ecdsa-p256")
    assert cp.returncode != 0, cp
    assert cp.stderr.startswith("error: "), cp
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p} was overwritten"


def test_generate_ca_name_and_expiry(iron_binary, tmp_path):
    cp = _generate(tmp_path, "-alg", "ecdsa-p256", "-name", "My Test CA", "-expiry-hours", "48")
    assert cp.returncode == 0, cp
    cert = certs.load_cert(tmp_path / "ca.crt")
    assert cert.subject.rfc4514_string() == "CN=My Test CA"
    lifetime = cert.not_valid_after - datetime.datetime.utcnow()
    assert datetime.timedelta(hours=47) < lifetime <= datetime.timedelta(hours=48, minutes=1)


def test_generate_ca_rejects_unknown_algorithm(iron_binary, tmp_path):
    cp = _generate(tmp_path, "-alg", "dsa1024")
    assert cp.returncode != 0
    assert "dsa1024" in cp.stderr and cp.stderr.startswith("error: "), cp
    assert not (tmp_path / "ca.key").exists()


@pytest.mark.parametrize("alg", list(ALGS))
def test_generated_ca_works_as_proxy_ca(alg, proxy_factory, https_upstream, tmp_path):
    """The generated CA loads, the proxy signs leaves with it, curl trusts them, and
    `openssl verify` accepts the leaf the proxy serves."""
    outdir = tmp_path / f"ca-{alg}"
    cp = _generate(outdir, "-alg", alg, timeout=120)
    assert cp.returncode == 0, cp
    key_type, bits = ALGS[alg]
    _check_ca(outdir, key_type, bits)
    ca_crt, ca_key = outdir / "ca.crt", outdir / "ca.key"

    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                                tls_extra={"ca_cert": str(ca_crt), "ca_key": str(ca_key)})
    r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                     cacert=ca_crt)
    assert r.http_code == 200, r
    r = clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url, cacert=ca_crt)
    assert r.http_code == 200, r

    s_client = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "allowed.test",
         "-showcerts"],
        input=b"", capture_output=True, timeout=20)
    pems = certs.split_pem_certs(s_client.stdout.decode("utf-8", "replace"))
    assert pems, s_client.stderr.decode()[-1000:]
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(pems[0])
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca_crt), str(leaf)],
                            capture_output=True, text=True, timeout=20)
    assert verify.returncode == 0 and "OK" in verify.stdout, verify
    leaf_cert = certs.load_cert(leaf)
    san = leaf_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "allowed.test" in san.get_values_for_type(x509.DNSName)
