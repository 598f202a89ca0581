"""The wheel installs one namespace, ``memrelay``, with the data files the code reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_only_the_memrelay_namespace_and_its_data(tmp_path: Path) -> None:
    had_build = (ROOT / "build").exists()
    try:
        _check_wheel(tmp_path)
    finally:  # setuptools builds in the source tree
        if not had_build:
            shutil.rmtree(ROOT / "build", ignore_errors=True)


def _check_wheel(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = tmp_path.glob("memrelay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"memrelay"}
    for data in ("memrelay/connectors/hubspot/mapping.yaml", "memrelay/engine/stores/db/migrations/script.py.mako",
                 "memrelay/engine/stores/db/migrations/env.py", "memrelay/workflows/definitions"):
        assert any(n.startswith(data) for n in names), data
    assert any(n.startswith("memrelay/engine/stores/db/migrations/versions/0001_") for n in names)
    assert not any(n.startswith(("memrelay/tests/", "memrelay/bench/", "memrelay/setup")) for n in names)
