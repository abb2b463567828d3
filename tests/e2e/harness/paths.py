"""Where things are, and the environment child processes get."""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# IRON_PROXY_BIN lets a developer point the suite at another build (e.g. a sanitizer build).
BINARY = Path(os.environ.get("IRON_PROXY_BIN", str(REPO_ROOT / "build" / "iron-proxy")))

MISSING_BINARY_MESSAGE = "build/iron-proxy not found: run scripts/build.sh"

# Variables that would make curl, Python or the proxy use another proxy, trust store or config.
_PROXY_VARS = {
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    "CURL_HOME",
}
_PROXY_PREFIXES = ("IRON_", "OTEL_")


def clean_env(extra=None, drop=()):
    """os.environ without proxy/trust-store/IRON_* settings (and without `drop`), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _PROXY_VARS and not k.startswith(_PROXY_PREFIXES) and k not in drop
    }
    if extra:
        env.update(extra)
    return env
