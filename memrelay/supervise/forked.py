"""Children forked from a warm parent (no exec): they share the parent's loaded pages copy-on-write.

:func:`fork_child` runs a function in a forked child and returns a :class:`ForkedProcess`, which the supervisor
handles like a ``subprocess.Popen`` (``poll``, ``wait``, ``send_signal``, ``kill``, ``returncode``). The child
never returns into the parent's code: it exits with the function's result through ``os._exit`` (no ``finally``
block or ``atexit`` hook of the parent runs in it — those would stop the parent's Redis, say).

What must not cross the fork is the caller's business before it calls :func:`fork_child`: no other thread
(:func:`memrelay.warmup.fork_safe_or_raise`), no open pooled SQL connection (dispose the pool first) — and the
child builds its own services, connections and threads (``before_child`` runs first in the child: it disposes
what the parent held without closing the parent's sockets).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

PROCESS_NAME_MAX = 15  # Linux comm (PR_SET_NAME)


def set_process_name(name: str) -> None:
    """Name this process in ``/proc/<pid>/comm`` (``ps -o comm``, ``top``): a forked child keeps its parent's
    command line, so the name is what tells a forked worker apart."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(15, name.encode()[:PROCESS_NAME_MAX], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def set_process_title(title: str) -> None:
    """Show ``title`` as this process's command line (``/proc/<pid>/cmdline``, ``ps``), as setproctitle does: the
    original argv area is overwritten in place (``/proc/self/mem``), truncated to its length and padded with
    NULs. A forked child otherwise shows its parent's command line. Best effort: nothing happens where the
    area cannot be written."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49 of stat)
        if end - start < 2:
            return
        data = title.encode()[: end - start - 1].ljust(end - start, b"\0")
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data)
    except (OSError, ValueError, IndexError):
        pass


class ForkedProcess:
    """A forked child as the supervisor sees a ``subprocess.Popen``: its pid, exit code, signals and waits."""

    def __init__(self, pid: int, args: str) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone, exit status unknown
                self.returncode = -1
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork_child(
    name: str,
    target: Callable[[], int],
    *,
    env: dict[str, str] | None = None,
    before_child: Callable[[], None] | None = None,
    title: str | None = None,
) -> ForkedProcess:
    """Fork; in the child: default signal handlers, stdin from /dev/null, SIGTERM when the parent dies, its
    name (and ``title`` as its command line), ``env`` applied to ``os.environ``, ``before_child()``, then
    ``os._exit(target())`` (1 and a traceback if it raises)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return ForkedProcess(pid, name)
    code = 1
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        from memrelay.supervise.embedded import die_with_parent

        die_with_parent()
        set_process_name(name)
        if title is not None:
            set_process_title(title)
        if env:
            os.environ.update(env)
        if before_child is not None:
            before_child()
        code = int(target() or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
