"""Real package clients run through the proxy's tunnel listener (CONNECT), trusting the proxy CA:
pip (download from an index), git (clone over HTTPS), npm (install), curl. Each returns the
CompletedProcess; nothing reads the user's configuration or the environment's proxy settings."""
import subprocess
from pathlib import Path

from .paths import clean_env

TIMEOUT = 60


def _run(args, env, cwd=None):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def pip_download(workdir: Path, proxy_url, ca, index_url, package, dest: Path):
    env = clean_env({"HOME": str(workdir), "PIP_CONFIG_FILE": "/dev/null"})
    return _run(["/usr/bin/python3", "-m", "pip", "download", "--isolated", "--no-cache-dir", "--no-deps",
                 "--disable-pip-version-check", "--retries", "0", "--timeout", "20", "--proxy", proxy_url,
                 "--cert", str(ca), "--index-url", index_url, "-d", str(dest), package], env)


def git_clone(workdir: Path, proxy_url, ca, url, dest: Path):
    env = clean_env({"HOME": str(workdir), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                     "GIT_SSL_CAINFO": str(ca)})
    return _run(["git", "-c", f"http.proxy={proxy_url}", "clone", "-q", url, str(dest)], env)


def npm_install(workdir: Path, proxy_url, ca, registry_url, package, prefix: Path):
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "user-npmrc").write_text("")
    (prefix / "global-npmrc").write_text("")
    env = clean_env({"HOME": str(workdir), "npm_config_userconfig": str(prefix / "user-npmrc"),
                     "npm_config_globalconfig": str(prefix / "global-npmrc"), "npm_config_update_notifier": "false"})
    return _run(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--fetch-retries", "0",
                 "--registry", registry_url, "--proxy", proxy_url, "--https-proxy", proxy_url,
                 "--cafile", str(ca), "--cache", str(prefix / ".npm-cache"), "--prefix", str(prefix), package], env,
                cwd=prefix)
