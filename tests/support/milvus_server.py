"""The pinned standalone Milvus server (PyPI ``milvus`` package), installed once into a cache directory
outside the repository keyed by its version, and started on free ports with a temporary data directory.

The package ships the server as LZMA-compressed binaries plus a config template. :func:`install` runs
``pip install --no-deps --target`` once and decompresses the binaries once (the package's own launcher
re-checks and re-extracts them into every data directory); :class:`MilvusServer` then writes a config from
the package's template (its own :class:`milvus.MilvusServerConfig`) and runs ``milvus run standalone``.
Nothing is downloaded after the first install.
"""

from __future__ import annotations

import importlib.util
import lzma
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

VERSION = "2.3.5"  # the newest Linux build of the standalone server on PyPI
LOCK = Path(__file__).resolve().parents[2] / "requirements-milvus.lock"  # its pinned hash
CACHE = Path(os.environ.get("MEMRELAY_MILVUS_CACHE", Path.home() / ".cache" / "memrelay" / "milvus"))
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 180
PORT_KEYS = ("etcd_port", "root_coord_port", "proxy_port", "proxy_internal_port", "query_coord_port",
             "query_node_port", "index_coord_port", "index_node_port", "data_coord_port", "data_node_port")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: every socket stays bound until all are chosen, so the kernel cannot
    hand the same port out twice (one port at a time could, and the server then fails to bind it)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def install(version: str = VERSION) -> Path:
    """``<cache>/<version>``, holding ``site/milvus`` and the decompressed ``bin/milvus`` (first call installs)."""
    home = CACHE / version
    if (home / ".installed").exists() and (home / "bin" / "milvus").exists():
        return home
    if home.exists():
        shutil.rmtree(home)
    staging = CACHE / f".{version}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    pinned = ["--require-hashes", "-r", str(LOCK)] if version == VERSION else [f"milvus=={version}"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                    "--disable-pip-version-check", "--target", str(staging / "site"), *pinned],
                   check=True, timeout=INSTALL_TIMEOUT_S)
    packed = staging / "site" / "milvus" / "data" / "bin"
    (staging / "bin").mkdir(parents=True)
    for lz in packed.glob("*.lzma"):
        target = staging / "bin" / lz.name[:-len(".lzma")]
        with lzma.open(lz) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        target.chmod(0o755)
        lz.unlink()  # the compressed copies are no longer needed
    (staging / ".installed").write_text(version)
    try:
        staging.rename(home)
    except OSError:  # another process installed it first
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _package(home: Path) -> ModuleType:
    """The installed ``milvus`` package (for its config template and writer), loaded from the cache."""
    spec = importlib.util.spec_from_file_location("memrelay_pinned_milvus", home / "site" / "milvus" / "__init__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MilvusServer:
    """One standalone Milvus server process with its own data directory and ports."""

    def __init__(self, data_dir: Path, *, version: str = VERSION, interim_index: bool = False):
        """``interim_index``: keep the server's default temporary IVF index (nlist 128, nprobe 16) over growing
        and not yet indexed segments. Off (memrelay's recommended setting), those segments are searched
        exactly: the interim index returned ~0.3 of the exact top 10 at 100,000 × 256 vectors
        (bench/bench_milvus_quality.py)."""
        self.home = install(version)
        self.interim_index = interim_index
        self.data_dir = Path(data_dir)
        *ports, self.etcd_peer_port, self.metrics_port = free_ports(len(PORT_KEYS) + 2)
        self.ports = dict(zip(PORT_KEYS, ports, strict=True))  # etcd's peer port is otherwise a fixed 2380
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy_port']}"

    def start(self) -> MilvusServer:
        pkg = _package(self.home)
        config = pkg.MilvusServerConfig(data_dir=str(self.data_dir), **self.ports)
        config.resolve()  # writes <data_dir>/configs/milvus.yaml with our ports and directories
        self._configure_embedded_etcd()
        if not self.interim_index:
            self._disable_interim_index()
        env = {**os.environ, "DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(self.metrics_port),
               "MILVUS_RUN_DIR": str(self.data_dir / "run"),
               "LD_LIBRARY_PATH": ":".join(filter(None, [str(self.home / "bin"), os.environ.get("LD_LIBRARY_PATH")]))}
        log = (self.data_dir / "logs" / "milvus-stdout.log").open("wb")
        began = time.monotonic()
        self.proc = subprocess.Popen([str(self.home / "bin" / "milvus"), "run", "standalone"], cwd=self.data_dir,
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self._wait_healthy(began)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _configure_embedded_etcd(self) -> None:
        """Point ``etcd.config.path`` at an embedded-etcd config with our own client and peer ports."""
        client = f"http://127.0.0.1:{self.ports['etcd_port']}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        etcd_yaml = self.data_dir / "configs" / "embedEtcd.yaml"
        etcd_yaml.write_text(f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                             f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
                             f"initial-cluster: default={peer}\n")
        milvus_yaml = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_yaml.read_text()
        assert text.count("\netcd:\n") == 1, "unexpected milvus.yaml template"
        milvus_yaml.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1))

    def _disable_interim_index(self) -> None:
        """``queryNode.segcore.interimIndex.enableIndex: false`` (see ``__init__``)."""
        milvus_yaml = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_yaml.read_text()
        marker = "interimIndex:"
        at = text.index(marker)
        head, tail = text[:at], text[at:]
        assert "enableIndex: true" in tail.split("\n", 3)[1], "unexpected milvus.yaml template"
        milvus_yaml.write_text(head + tail.replace("enableIndex: true", "enableIndex: false", 1))

    def _wait_healthy(self, began: float) -> None:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        while time.monotonic() - began < START_TIMEOUT_S:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus exited {self.proc.returncode}; see {self.data_dir / 'logs'}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if b"OK" in resp.read():
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"milvus not healthy after {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        path = self.data_dir / "logs" / "milvus-stdout.log"
        return path.read_bytes()[-n:].decode(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM the server's process group, then SIGKILL what is left after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> MilvusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m tests.support.milvus_server [--install-only]``: install (timed), or run until Ctrl-C/SIGTERM."""
    began = time.monotonic()
    home = install()
    size = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    print(f"milvus {VERSION} cached at {home} ({size / 1e6:.0f} MB) in {time.monotonic() - began:.1f} s")
    if "--install-only" in sys.argv:
        return
    import tempfile

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background, where SIGINT is ignored
    with tempfile.TemporaryDirectory(prefix="milvus-") as tmp, MilvusServer(Path(tmp)) as server:
        print(f"started in {server.start_seconds:.1f} s: {server.uri}  (Ctrl-C stops)")
        try:
            while server.proc and server.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
