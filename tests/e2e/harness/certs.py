"""Certificates made with python3-cryptography: the upstream servers' CA and server certificate,
and a fallback proxy CA for when the binary's generate-ca is unusable."""
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names the upstream certificate is valid for. OpenSSL does not let "*.test" match (a wildcard
# needs two labels after it), so every name the tests use is listed explicitly too.
UPSTREAM_DNS_NAMES = [
    "*.test", "allowed.test", "denied.test", "other.test", "loop.test", "warn.test",
    "sub.allowed.test", "a.glob.test", "unreach.test", "localhost",
]
UPSTREAM_IPS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


@dataclass
class CertPair:
    cert_path: Path
    key_path: Path
    cert: x509.Certificate


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _write_key(path: Path, key):
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def make_ca(outdir: Path, cn: str, stem: str = "ca") -> tuple[CertPair, object]:
    """A self-signed ECDSA P-256 CA (CA:TRUE, pathlen 0, keyCertSign|cRLSign)."""
    outdir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = CertPair(outdir / f"{stem}.crt", outdir / f"{stem}.key", cert)
    _write_cert(pair.cert_path, cert)
    _write_key(pair.key_path, key)
    return pair, key


def make_server_cert(outdir: Path, ca: CertPair, ca_key, stem: str = "server",
                     dns_names=UPSTREAM_DNS_NAMES, ips=UPSTREAM_IPS) -> CertPair:
    """A server (leaf) certificate signed by `ca`, valid for `dns_names` and `ips`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = [x509.DNSName(n) for n in dns_names] + [
        x509.IPAddress(ipaddress.ip_address(i)) for i in ips
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pair = CertPair(outdir / f"{stem}.crt", outdir / f"{stem}.key", cert)
    _write_cert(pair.cert_path, cert)
    _write_key(pair.key_path, key)
    return pair


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def load_key(path: Path):
    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


def split_pem_certs(text: str) -> list[str]:
    """All PEM CERTIFICATE blocks in `text`, in order (e.g. from `openssl s_client -showcerts`)."""
    out, cur = [], None
    for line in text.splitlines():
        if line.strip() == "-----BEGIN CERTIFICATE-----":
            cur = [line.strip()]
        elif cur is not None:
            cur.append(line.strip())
            if line.strip() == "-----END CERTIFICATE-----":
                out.append("\n".join(cur) + "\n")
                cur = None
    return out
