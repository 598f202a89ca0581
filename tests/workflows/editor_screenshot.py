"""Screenshot of a template in the n8n editor (docs/images/n8n-template-editor.png):
``python -m tests.workflows.editor_screenshot [template.json] [out.png]``.

Uses the cached n8n 2.41.1 (installs it if needed), builds the node pack into a temporary user folder, imports the
template with placeholder credentials, starts n8n, sets up the owner through n8n's REST API and opens
``/workflow/<id>`` in headless Chromium with the session cookie (tests/workflows/editor_screenshot.mjs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from memrelay.workflows.n8n.build import TEMPLATES_DIR
from memrelay.workflows.n8n.document import API_CREDENTIAL
from tests.workflows.n8n_runtime import REPO, N8n, build_package, install, install_package

SCRIPT = Path(__file__).with_name("editor_screenshot.mjs")


def main(template: str = "workflow-form-lead-slack.json",
         out: Path = REPO / "docs" / "images" / "n8n-template-editor.png") -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is needed (apt-get install -y chromium)")
    inst = install()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "n8n"
        folder.mkdir()
        install_package(build_package(inst.node, Path(tmp) / "pkg", lint=False), folder, inst)
        n8n = N8n(inst, folder)
        n8n.import_json("credentials", [{**API_CREDENTIAL, "type": "memrelayApi", "data": {
            "baseUrl": "https://memrelay.example.com", "apiKey": "mr_example"}}], "credentials.json")
        doc = json.loads((TEMPLATES_DIR / template).read_text())
        n8n.import_workflows({template: doc})
        server = n8n.start(Path(tmp) / "n8n.log")
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{n8n.url}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.5)
            n8n.login()
            cookie = n8n.session.cookies.get("n8n-auth")
            assert cookie, "no n8n-auth cookie after login"
            out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(inst.node), str(SCRIPT), chromium, f"{n8n.url}/workflow/{doc['id']}", "n8n-auth",
                            cookie, str(out), "1600", "900", "15000"], check=True, timeout=180,
                           env={**os.environ, "PATH": f"{inst.node.parent}:{os.environ.get('PATH', '')}"})
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    return out


if __name__ == "__main__":
    print(main(*sys.argv[1:2]) if len(sys.argv) > 1 else main())
