"""Debian's Chromium for the console's browser tests (Playwright drives it; ``playwright install`` is never run).

``python -m tests.support.chromium`` installs the ``chromium`` package with apt when ``/usr/bin/chromium`` is
missing, keeping the downloaded .debs in ``~/.cache/memrelay/apt`` so a reinstall needs no network. Needs root
(or password-less sudo).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
APT_CACHE = Path.home() / ".cache" / "memrelay" / "apt"


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run([*prefix, "apt-get", *args], env=env, text=True, capture_output=True)


def _has_candidate() -> bool:
    out = subprocess.run(["apt-cache", "policy", "chromium"], text=True, capture_output=True).stdout
    return "Candidate:" in out and "Candidate: (none)" not in out


def ensure_chromium() -> Path:
    """The Chromium executable, installed first when missing; RuntimeError saying why when it cannot be."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not shutil.which("apt-get"):
        raise RuntimeError("chromium is missing and this machine has no apt-get: install Chromium at /usr/bin/chromium")
    (APT_CACHE / "partial").mkdir(parents=True, exist_ok=True)
    cache = f"Dir::Cache::archives={APT_CACHE}"
    if not _has_candidate():
        upd = _apt("update", "-qq")
        if upd.returncode:
            raise RuntimeError(f"apt-get update failed: {upd.stderr[-2000:]}")
    res = _apt("install", "-y", "-qq", "--no-install-recommends", "-o", cache, "chromium")
    if res.returncode:  # stale package lists name .debs the mirror no longer has: refresh once and retry
        _apt("update", "-qq")
        res = _apt("install", "-y", "-qq", "--no-install-recommends", "-o", cache, "chromium")
    if res.returncode or not CHROMIUM.exists():
        raise RuntimeError(f"apt-get install chromium failed: {res.stderr[-2000:]}")
    return CHROMIUM


if __name__ == "__main__":
    try:
        print(ensure_chromium())
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
