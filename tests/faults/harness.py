"""Running `llama-recipe` as a user does, in processes of its own, and breaking it for real:
SIGKILL at a moment or at a failpoint, servers killed, disks filled.

Every command started here carries a mark in its environment that its descendants inherit;
`survivors` finds the marked processes still alive, to check that nothing a killed command
started outlives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

MARK = "LLAMA_RECIPE_FAULT_TEST"


@dataclass
class Command:
    process: subprocess.Popen
    mark: str
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout_s: float = 300.0, since: int = 0) -> float:
        """Seconds since start when a line matching `pattern` appeared (among the lines after
        the first `since`)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = since
        while time.monotonic() < deadline:
            for when, line in self.lines[seen:]:
                if regex.search(line):
                    return when
            seen = len(self.lines)
            if self.process.poll() is not None and seen == len(self.lines):
                time.sleep(0.2)  # the reader may still be draining the pipe
                if not any(regex.search(line) for _, line in self.lines[seen:]):
                    raise AssertionError(
                        f"exited ({self.process.returncode}) before {pattern!r}:\n"
                        + self.output()[-3000:]
                    )
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} after {timeout_s:g} s:\n" + self.output()[-3000:])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def finish(self, timeout_s: float = 600.0) -> int:
        """The exit code; a command still running after `timeout_s` prints where each of its
        threads is (SIGUSR1, see flows/cli.py), is killed with everything it started (so
        that no slot or lease it holds outlives the test) and fails the test."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
            self.kill()
            deadline = time.monotonic() + 15
            while (left := survivors(self.mark)) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            raise AssertionError(
                f"still running after {timeout_s:g} s; killed. Its output, with its threads' "
                f"stacks at the end:\n{self.output()[-12000:]}"
            ) from None
        time.sleep(0.1)
        return self.process.returncode


def start(args: list[str], env: dict[str, str] | None = None, **extra_env: str) -> Command:
    """`llama-recipe ARGS` in a process of its own, its output collected line by line."""
    return run_command([sys.executable, "-m", "flows.cli", *args], env, **extra_env)


def run_command(argv: list[str], env: dict[str, str] | None = None, **extra_env: str) -> Command:
    """Any command (a Prefect worker, say), marked and collected as `start` does."""
    mark = uuid.uuid4().hex
    environment = {**os.environ, **(env or {}), **extra_env, MARK: mark}
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    command = Command(process, mark, time.monotonic())

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            command.lines.append((time.monotonic() - command.started, line.rstrip()))

    threading.Thread(target=read, daemon=True).start()
    return command


def survivors(mark: str) -> list[int]:
    """Processes (other than this one) whose environment carries `mark`."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def assert_nothing_survives(command: Command, within_s: float = 15.0) -> None:
    """Everything the command started ends with it (the guardian gives them five seconds to
    go politely first)."""
    deadline = time.monotonic() + within_s
    while (left := survivors(command.mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes outlived their command: {left}"


def shard_digests(workdir: str) -> list[tuple[str, str]]:
    """(file, sha256) of every shard of the committed mix version, hashed here."""
    from pipelines.shards import shards_dir

    directory, _ = shards_dir(os.path.join(workdir, "mix", "_all"))
    names = sorted(n for n in os.listdir(directory) if n.endswith(".arrow"))
    return [
        (name, hashlib.sha256(Path(directory, name).read_bytes()).hexdigest()) for name in names
    ]


def stage_counts(workdir: str) -> dict[str, dict]:
    """Every manifest's document counts, by `<stage>/<source>`."""
    counts = {}
    for path in sorted(Path(workdir).glob("*/*/_MANIFEST.json")):
        manifest = json.loads(path.read_text())
        counts[f"{path.parent.parent.name}/{path.parent.name}"] = manifest.get("counts")
    return counts
