"""The pinned n8n (n8n_templates/package.json) on an npm-installed Node 24, installed once by
tests/workflows/install_n8n.sh into ~/.cache/memrelay/n8n-<version>; the memrelay node package
(n8n-nodes-memrelay/, built with @n8n/node-cli from node_modules cached by its lockfile hash) installed into an
n8n user folder as a community package; and helpers to drive n8n offline (CLI and the editor's REST API)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
PIN_DIR = REPO / "n8n_templates"
PACKAGE_DIR = REPO / "n8n-nodes-memrelay"
INSTALL_SCRIPT = Path(__file__).with_name("install_n8n.sh")
CACHE_ROOT = Path(os.environ.get("MEMRELAY_CACHE", Path.home() / ".cache" / "memrelay"))
INSTALL_TIMEOUT_S = 3600
PACKAGE_SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "eslint.config.mjs", ".prettierrc.js",
                   "README.md", "credentials", "nodes", "icons")
OWNER = {"email": "owner@example.com", "firstName": "Ada", "lastName": "Owner", "password": "Memrelay-test-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Install:
    """One n8n installation: Node 24 and n8n's entry script."""

    home: Path

    @property
    def node(self) -> Path:
        return self.home / "node" / "node_modules" / "node" / "bin" / "node"

    @property
    def n8n(self) -> Path:
        return self.home / "app" / "node_modules" / "n8n" / "bin" / "n8n"

    @property
    def node_modules(self) -> Path:
        return self.home / "app" / "node_modules"


def install() -> Install:
    """Run tests/workflows/install_n8n.sh (a no-op when the cache is complete)."""
    out = subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=INSTALL_TIMEOUT_S, text=True,
                         stdout=subprocess.PIPE)
    home = Install(Path(out.stdout.strip().splitlines()[-1]))
    assert home.node.exists() and home.n8n.exists(), home
    return home


def package_dependencies(node: Path) -> Path:
    """``node_modules`` of the node package's dev tools (@n8n/node-cli, TypeScript), installed once per
    lockfile into ``<cache>/n8n-nodes-memrelay/<hash>``."""
    files = [PACKAGE_DIR / "package.json", PACKAGE_DIR / "package-lock.json"]
    key = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    home = CACHE_ROOT / "n8n-nodes-memrelay" / key
    if (home / ".installed").exists():
        return home / "node_modules"
    home.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, home / f.name)
    # scripts off: a lint plugin's preinstall insists on pnpm; nothing here needs an install script
    subprocess.run([str(node), _npm_cli(), "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=home,
                   env=_node_env(node), check=True, timeout=1800, stdout=subprocess.DEVNULL)
    (home / ".installed").write_text(key)
    return home / "node_modules"


def build_package(node: Path, work: Path, *, lint: bool = True) -> Path:
    """Copy the package sources to ``work``, build (and lint) them with ``n8n-node``; returns the build dir."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in PACKAGE_SOURCES:
        src = PACKAGE_DIR / name
        if src.is_dir():
            shutil.copytree(src, work / name)
        elif src.exists():
            shutil.copy(src, work / name)
    (work / "node_modules").symlink_to(package_dependencies(node))
    cli = str(work / "node_modules" / "@n8n" / "node-cli" / "bin" / "n8n-node.mjs")
    for args in (["build"], ["lint"]) if lint else (["build"],):
        proc = subprocess.run([str(node), cli, *args], cwd=work, env={**_node_env(node), "CI": "true"},
                              capture_output=True, text=True, timeout=900)
        # n8n 2.41.1 on Node 24 sometimes dies of SIGSEGV while shutting down after a finished CLI run
        crashed_on_exit = proc.returncode == -11 and "Execution was successful" in proc.stdout
        if proc.returncode != 0 and not crashed_on_exit:
            raise AssertionError(f"n8n-node {args[0]} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return work


def install_package(build: Path, user_folder: Path, n8n: Install) -> Path:
    """What n8n's community-package install leaves on disk: ``<user folder>/.n8n/nodes/node_modules/<name>``
    holding the published files (package.json + dist), with the peer dependency n8n-workflow resolvable."""
    modules = user_folder / ".n8n" / "nodes" / "node_modules"
    target = modules / "n8n-nodes-memrelay"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(build / "package.json", target / "package.json")
    shutil.copytree(build / "dist", target / "dist")
    peer = modules / "n8n-workflow"
    if not peer.exists():
        peer.symlink_to(n8n.node_modules / "n8n-workflow")
    return target


def _npm_cli() -> str:
    npm = shutil.which("npm")
    assert npm, "npm is needed"
    return str(Path(npm).resolve().parent / "npm-cli.js")


def _node_env(node: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{node.parent}:{os.environ.get('PATH', '')}", "SCARF_ANALYTICS": "false"}


def offline_env(user_folder: Path, port: int, node: Path) -> dict[str, str]:
    return {**{k: v for k, v in _node_env(node).items() if not k.startswith(("N8N_", "MEMRELAY_"))},
            "N8N_USER_FOLDER": str(user_folder), "DB_TYPE": "sqlite", "N8N_ENCRYPTION_KEY": "memrelay-test-key",
            "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_COMMUNITY_PACKAGES_ENABLED": "true", "N8N_AI_ENABLED": "false", "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1", "N8N_PORT": str(port), "N8N_SECURE_COOKIE": "false",
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/", "N8N_PUBLIC_API_DISABLED": "true",
            "N8N_HIRING_BANNER_ENABLED": "false", "SCARF_ANALYTICS": "false", "N8N_LOG_LEVEL": "info",
            "EXTERNAL_FRONTEND_HOOKS_URLS": "", "N8N_RUNNERS_ENABLED": "true",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false", "N8N_DYNAMIC_BANNERS_ENABLED": "false"}


STARTING_UP = "n8n is starting up"
"""What n8n answers (HTTP 200, text) on any route while it is still loading, after its port is open."""


def still_starting(resp: requests.Response) -> bool:
    """Whether ``resp`` came from an n8n that is not serving yet: a route not registered yet (404) or its
    "starting up" page."""
    return resp.status_code == 404 or STARTING_UP in resp.text[:200]


class N8n:
    """CLI calls against one temporary n8n user folder, and the REST API of ``n8n start`` on it."""

    def __init__(self, install: Install, user_folder: Path):
        self.install, self.port = install, free_port()
        self.env = offline_env(user_folder, self.port, install.node)
        self.cwd = user_folder
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.install.node), str(self.install.n8n), *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=timeout)
        # n8n 2.41.1 on Node 24 sometimes dies of SIGSEGV while shutting down after a finished CLI run
        crashed_on_exit = proc.returncode == -11 and "Execution was successful" in proc.stdout
        if proc.returncode != 0 and not crashed_on_exit:
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
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for name, doc in docs.items():
            (folder / name).write_text(json.dumps(doc))
        self.cli("import:workflow", "--separate", f"--input={folder}")

    def execute(self, workflow_id: str) -> Any:
        """Run a manual-trigger workflow; returns the JSON result printed after the log lines."""
        out = self.cli("execute", f"--id={workflow_id}", "--rawOutput").stdout
        for start in re.finditer(r"^[\[{]", out, re.M):  # log lines may start with "[" too
            try:
                return json.JSONDecoder().raw_decode(out[start.start():])[0]
            except json.JSONDecodeError:
                continue
        raise AssertionError(f"no JSON result in n8n output:\n{out[-3000:]}")

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(self.install.node), str(self.install.n8n), "start"], env=self.env, cwd=self.cwd,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    # --- the editor's REST API (owner account, cookie session) -------------------------------------------------
    def login(self) -> None:
        """Set up the instance owner (first run) and log in; the session keeps the auth cookie."""
        deadline = time.monotonic() + 120
        while True:  # /healthz answers before the REST routes exist
            resp = self.session.post(f"{self.url}/rest/owner/setup", json=OWNER, timeout=60)
            if not still_starting(resp) or time.monotonic() > deadline:
                break
            time.sleep(1)
        if resp.status_code >= 400:  # already set up
            resp = self.session.post(f"{self.url}/rest/login", json={
                "emailOrLdapLoginId": OWNER["email"], "password": OWNER["password"]}, timeout=60)
        assert resp.status_code == 200, resp.text[:1000]

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.session.request(method, f"{self.url}/rest{path}", json=body, timeout=120)
        assert resp.status_code < 300, (method, path, resp.status_code, resp.text[:2000])
        return resp.json().get("data", resp.json())
