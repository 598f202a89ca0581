"""Maps the repository's top-level folders into the one installed namespace ``memrelay.*``.

``engine/`` becomes ``memrelay.engine``, ``gateway/`` ``memrelay.gateway``, and so on; nothing else lands in
site-packages. Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = {"memrelay": "memrelay", "memrelay.engine": "engine", "memrelay.gateway": "gateway",
           "memrelay.connectors": "connectors", "memrelay.worker": "worker", "memrelay.workflows": "workflows"}

packages = [f"{name}.{sub}" for name, folder in FOLDERS.items() for sub in find_packages(folder)]
setup(packages=sorted([*FOLDERS, *packages]), package_dir=FOLDERS)
