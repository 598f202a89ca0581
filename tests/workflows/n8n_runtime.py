"""The pinned n8n (n8n_templates/package.json + package-lock.json), installed once into a cache directory
outside the repository keyed by the lockfile hash, and helpers to drive it offline."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PIN_DIR = REPO / "n8n_templates"
CACHE = Path(os.environ.get("MEMRELAY_N8N_CACHE", Path.home() / ".cache" / "memrelay" / "n8n"))
INSTALL_TIMEOUT_S = 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install() -> Path:
    """``<cache>/<hash>/node_modules/.bin/n8n``, running ``npm install`` (lockfile) the first time."""
    files = [PIN_DIR / "package.json", PIN_DIR / "package-lock.json"]
    key = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    home = CACHE / key
    binary = home / "node_modules" / ".bin" / "n8n"
    if (home / ".installed").exists() and binary.exists():
        return binary
    home.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, home / f.name)
    env = {**os.environ, "SCARF_ANALYTICS": "false", "N8N_DIAGNOSTICS_ENABLED": "false", **_local_node_headers()}
    # `npm ci` trips over a platform-specific optional dependency; `npm install` honours the lockfile
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=home, env=env, check=True,
                   timeout=INSTALL_TIMEOUT_S, stdout=subprocess.DEVNULL)
    (home / ".installed").write_text(key)
    return binary


def _local_node_headers() -> dict[str, str]:
    """node-gyp (sqlite3's build) downloads Node's headers unless told where local ones are; Debian's
    nodejs ships them under <prefix>/include/node, and this machine has no route to the download."""
    node = shutil.which("node")
    prefix = Path(node).resolve().parents[1] if node else None
    if prefix and (prefix / "include" / "node" / "node.h").exists():
        return {"npm_config_nodedir": str(prefix)}
    return {}


def offline_env(user_folder: Path, port: int) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "MEMRELAY_"))},
            "N8N_USER_FOLDER": str(user_folder), "DB_TYPE": "sqlite", "N8N_ENCRYPTION_KEY": "memrelay-test-key",
            "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_COMMUNITY_PACKAGES_ENABLED": "false", "N8N_AI_ENABLED": "false", "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1", "N8N_PORT": str(port), "N8N_SECURE_COOKIE": "false",
            "N8N_PUBLIC_API_DISABLED": "true", "N8N_HIRING_BANNER_ENABLED": "false", "SCARF_ANALYTICS": "false",
            "N8N_LOG_LEVEL": "info", "EXTERNAL_FRONTEND_HOOKS_URLS": "", "N8N_RUNNERS_ENABLED": "true"}


class N8n:
    """CLI calls against one temporary n8n user folder."""

    def __init__(self, binary: Path, user_folder: Path):
        self.binary, self.port = binary, free_port()
        self.env = offline_env(user_folder, self.port)
        self.cwd = user_folder

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.binary), *args], env=self.env, cwd=self.cwd, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"n8n {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                                 f"{proc.stderr[-3000:]}")
        return proc

    def import_json(self, kind: str, data: Any, name: str) -> None:
        path = self.cwd / name
        path.write_text(json.dumps(data))
        self.cli(f"import:{kind}", f"--input={path}")

    def import_workflows(self, docs: dict[str, Any]) -> None:
        """Import many workflows with one n8n process (each import pays n8n's start-up)."""
        folder = self.cwd / "workflows"
        folder.mkdir(exist_ok=True)
        for name, doc in docs.items():
            (folder / name).write_text(json.dumps(doc))
        self.cli("import:workflow", "--separate", f"--input={folder}")

    def execute(self, workflow_id: str) -> Any:
        """Run a manual-trigger workflow; returns the JSON result printed after the log lines."""
        out = self.cli("execute", f"--id={workflow_id}", "--rawOutput").stdout
        start = re.search(r"^[\[{]", out, re.M)
        if start is None:
            raise AssertionError(f"no JSON result in n8n output:\n{out[-3000:]}")
        return json.JSONDecoder().raw_decode(out[start.start():])[0]

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(self.binary), "start"], env=self.env, cwd=self.cwd, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
