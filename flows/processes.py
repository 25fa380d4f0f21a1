"""Child processes that end with their parent, whatever ends the parent (SIGKILL included).

Two mechanisms, because some children are started by libraries (Beam's worker processes,
Prefect's flow-run subprocesses, torchrun's ranks) and some by us:

- `spawn` starts a command under the kernel's parent-death signal: it is killed the moment
  the process that started it dies (the temporary Prefect server, torchrun).
- `start_guardian` starts one small process per command that waits for this process to
  die and then ends every process still carrying this command's mark in its environment,
  the mark every descendant inherits: children of children, and those a library started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from typing import Any

SESSION_ENV = "LLAMA_RECIPE_SESSIONS"
_PR_SET_PDEATHSIG = 1

# Set the parent-death signal, check the parent did not die before that, then exec.
_EXEC_WITH_PDEATHSIG = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, int(sys.argv[1]))\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    os._exit(1)\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)

# The guardian: sleeps until its parent dies (the parent-death signal wakes it), then ends
# every process marked with the session, politely first.
_GUARDIAN = """
import os, signal, sys, time
session, parent = sys.argv[1], int(sys.argv[2])
def marked():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read().split(b"\\0")
        except OSError:
            continue
        for item in env:
            key, _, value = item.partition(b"=")
            if key == b"LLAMA_RECIPE_SESSIONS" and session.encode() in value.split(b","):
                found.append(int(name))
    return found
def end(signum, frame):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = marked()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = marked()
        if not pids:
            break
    os._exit(0)
signal.signal(signal.SIGTERM, end)
import ctypes
ctypes.CDLL(None).prctl(1, signal.SIGTERM)
if os.getppid() != parent:
    end(None, None)
while True:
    signal.pause()
"""


def _linux() -> bool:
    return sys.platform.startswith("linux")


def spawn(command: Sequence[str], death_signal: int = signal.SIGKILL, **popen: Any):
    """subprocess.Popen(command), killed with `death_signal` as soon as this process dies."""
    if not _linux():
        return subprocess.Popen(list(command), **popen)
    wrapper = [sys.executable, "-I", "-c", _EXEC_WITH_PDEATHSIG, str(int(death_signal))]
    return subprocess.Popen([*wrapper, str(os.getpid()), *command], **popen)


_guardian: subprocess.Popen | None = None


def start_guardian() -> None:
    """Mark this process's environment (inherited by every descendant) and start the
    guardian that ends the marked processes when this one dies. Once per process, from its
    main thread (the kernel's parent-death signal follows the thread that started it)."""
    global _guardian
    if _guardian is not None or not _linux():
        return
    session = uuid.uuid4().hex[:12]
    sessions = [s for s in os.environ.get(SESSION_ENV, "").split(",") if s]
    os.environ[SESSION_ENV] = ",".join([*sessions, session])
    env = {k: v for k, v in os.environ.items() if k != SESSION_ENV}  # never ends itself
    _guardian = subprocess.Popen(
        [sys.executable, "-I", "-c", _GUARDIAN, session, str(os.getpid())],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the terminal is for us, not for it
    )


def die_with_parent(death_signal: int = signal.SIGKILL) -> None:
    """Ask the kernel to kill this process when its parent dies (torchrun's ranks)."""
    if _linux():
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(death_signal))
