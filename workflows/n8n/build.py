"""`memrelay templates build`: render every shipped n8n template (workflows/n8n/templates.py) into n8n_templates/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memrelay.workflows.n8n.document import dumps
from memrelay.workflows.n8n.nodes import validate
from memrelay.workflows.n8n.templates import TEMPLATES

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "n8n_templates"
NOT_TEMPLATES = ("package.json", "package-lock.json")


def render_all() -> dict[str, dict[str, Any]]:
    """File name → document, every one validated (an invalid document fails the build)."""
    docs = {f"{key}.json": build() for key, build in TEMPLATES.items()}
    for doc in docs.values():
        validate(doc)
    return docs


def build(out_dir: Path = TEMPLATES_DIR, *, check: bool = False) -> list[str]:
    """Write the templates (or, with ``check``, list the files that differ from a fresh build)."""
    docs = render_all()
    differ: list[str] = []
    for name, doc in sorted(docs.items()):
        path, text = out_dir / name, dumps(doc)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        differ.append(name)
        if not check:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    stale = sorted(p.name for p in out_dir.glob("*.json") if p.name not in docs and p.name not in NOT_TEMPLATES)
    differ += [f"{n} (stale)" for n in stale]
    if not check:
        for n in stale:
            (out_dir / n).unlink()
    return differ
