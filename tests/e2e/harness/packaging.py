"""The Debian package and a clean Debian 12 root for the packaging tests.

build_deb(): `cpack -G DEB` over the normal build (build/), as scripts/package.sh does.
debian_root(dest): a fresh copy of a debootstrapped Debian 12 (bookworm, minbase) root. Making one
takes ~3 minutes, so it is cached outside the repository, keyed by date (one debootstrap a day at
most), with that day's apt package lists: $IRON_TEST_DEBIAN_ROOT_CACHE, default
/var/cache/iron-proxy-tests, where downloaded .debs are kept too (archives/). Older days are deleted.
"""
import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.paths import REPO_ROOT

BUILD_DIR = REPO_ROOT / "build"
CACHE_DIR = Path(os.environ.get("IRON_TEST_DEBIAN_ROOT_CACHE", "/var/cache/iron-proxy-tests"))
SUITE = "bookworm"


def chroot_skip_reason():
    """Why the chroot tests cannot run here, or None."""
    if os.environ.get("IRON_TEST_CHROOT", "1") == "0":
        return "IRON_TEST_CHROOT=0"
    if os.geteuid() != 0:
        return "needs root (chroot, debootstrap)"
    if not shutil.which("debootstrap"):
        return "debootstrap not installed (scripts/install-deps.sh installs it)"
    return None


def project_version():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    return re.search(r"project\(iron_proxy VERSION ([0-9.]+)", text).group(1)


def build_deb(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    cp = subprocess.run(["cpack", "--config", str(BUILD_DIR / "CPackConfig.cmake"), "-G", "DEB", "-B", str(out_dir)],
                        capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    debs = sorted(out_dir.glob("iron-proxy_*.deb"))
    assert len(debs) == 1, (debs, cp.stdout)
    return debs[0]


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True).stdout.strip()


def depends_names(deb: Path):
    """Package names of Depends (the first of each alternative, without version)."""
    return [alt.split("|")[0].strip().split(" ")[0] for alt in deb_field(deb, "Depends").split(",")]


def _mirror():
    for f in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if f.exists():
            m = re.search(r"(?:URIs:|deb)\s+(https?://\S+/debian)\b", f.read_text())
            if m:
                return m.group(1)
    return "http://deb.debian.org/debian"


def _cached_root() -> Path:
    today = datetime.date.today().strftime("%Y%m%d")
    root = CACHE_DIR / f"debian12-minbase-{today}"
    if (root / "etc" / "debian_version").exists():
        return root
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for old in CACHE_DIR.glob("debian12-minbase-*"):
        shutil.rmtree(old, ignore_errors=True)
    work = CACHE_DIR / f"partial-{today}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    cp = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(work), _mirror()],
                        capture_output=True, text=True, timeout=900)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    # The day's package lists too, so a test's apt-get install needs no `apt-get update`.
    shutil.copyfile("/etc/resolv.conf", work / "etc" / "resolv.conf")
    cp = subprocess.run(["chroot", str(work), "apt-get", "update", "-qq"], capture_output=True, text=True,
                        timeout=300, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert cp.returncode == 0, cp.stderr[-3000:]
    work.rename(root)
    return root


def debian_root(dest: Path) -> Path:
    """A fresh copy of today's clean root at `dest`, with the host's resolver for apt."""
    subprocess.run(["cp", "-a", str(_cached_root()), str(dest)], check=True, timeout=300)
    shutil.copyfile("/etc/resolv.conf", dest / "etc" / "resolv.conf")
    return dest


class Chroot:
    """Runs commands inside `root` (as root, or as `user` "uid:gid"), with /proc mounted."""

    def __init__(self, root: Path):
        self.root = root
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        # Downloaded .debs are kept across runs (the cache directory), not fetched per test.
        (CACHE_DIR / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(CACHE_DIR / "archives"), str(root / "var/cache/apt/archives")],
                       check=True)

    def close(self):
        subprocess.run(["umount", "-l", str(self.root / "var/cache/apt/archives")], check=False)
        subprocess.run(["umount", "-l", str(self.root / "proc")], check=False)

    def run(self, *args, user=None, env=None, timeout=300, check=True):
        cmd = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(self.root), *args]
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C"}
        full_env.update(env or {})
        cp = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
        if check:
            assert cp.returncode == 0, f"{args}: exit {cp.returncode}\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"
        return cp

    def popen(self, *args, user=None, env=None):
        cmd = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(self.root), *args]
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        full_env.update(env or {})
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=full_env, start_new_session=True)

    def apt_install(self, packages):
        self.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages, timeout=600)
