"""The workdir lease: one build at a time writes a workdir, whatever machine or Prefect server
it runs from, and a build that dies never blocks the next one for long.

The lease is a file in the workdir itself (`_LEASE.json`: owner, host, process, expiry),
so any two builds that share a workdir meet there. A live owner renews it every third of its
time to live. Another build takes it over when the owner is dead: at once when the owner ran
on this machine and its process is gone (process id, start time and boot id are checked),
else when the lease has expired (`ttl_s`: a minute on a local disk, a few minutes on an
object store). A build that loses its lease (taken over while it hung) stops before it
commits anything.

On a local or network file system, taking or taking over the lease happens under `flock` on
`_LEASE.lock` (released by the kernel if the process dies). On an object store (gs://,
s3://), which has no locks, a build writes its lease, waits, and reads it back twice; the
last writer wins and the others wait. That is weaker than a lock when two builds start
within the same few seconds, which is why the expiry there is longer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipelines.errors import EnvironmentProblem, StageError

LEASE = "_LEASE.json"
LOCK = "_LEASE.lock"
LOCAL_TTL_S = 60.0
OBJECT_STORE_TTL_S = 180.0
OBJECT_STORE_SETTLE_S = 3.0


class LeaseLost(StageError):
    """Another build took this build's lease over (it was seen as dead): stop writing."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


@dataclass
class Owner:
    token: str
    host: str
    boot_id: str
    pid: int
    pid_start: str | None
    what: str  # "build of recipe sample", for people reading the file or the wait message
    acquired_at: float
    renewed_at: float
    ttl_s: float
    # Leases of Prefect concurrency slots this owner holds now (lease ids): whoever takes
    # over from a dead owner gives them back at once.
    slots: list[str] = field(default_factory=list)

    @classmethod
    def me(cls, what: str, ttl_s: float) -> Owner:
        now = time.time()
        return cls(
            token=uuid.uuid4().hex,
            host=socket.gethostname(),
            boot_id=_boot_id(),
            pid=os.getpid(),
            pid_start=_process_start(os.getpid()),
            what=what,
            acquired_at=now,
            renewed_at=now,
            ttl_s=ttl_s,
        )

    def describe(self) -> str:
        return f"{self.what} (pid {self.pid} on {self.host})"

    def here(self) -> bool:
        """Whether this owner runs on this machine (its process can be checked)."""
        return self.host == socket.gethostname() and bool(self.boot_id)

    def when_replaced(self) -> str:
        if self.here():
            return "it is replaced as soon as its process ends"
        return f"it is replaced {self.ttl_s:g} s after its last renewal if it died"

    def dead_because(self, now: float | None = None) -> str | None:
        """Why this owner no longer holds the lease, or None while it may be alive. An owner
        on this machine is dead exactly when its process is gone; one elsewhere when it has
        not renewed the lease within its time to live."""
        if self.here():
            if self.boot_id != _boot_id():
                return "this machine restarted since"
            if _process_start(self.pid) != self.pid_start:
                return "its process is gone"
            return None
        now = time.time() if now is None else now
        if now > self.renewed_at + self.ttl_s:
            return f"not renewed for {now - self.renewed_at:.0f} s (time to live {self.ttl_s:g} s)"
        return None


def _parse(data: bytes) -> Owner | None:
    try:
        return Owner(**json.loads(data.decode("utf-8")))
    except (ValueError, TypeError):
        return None  # a lease file cut short by a crash holds nothing


class _Renewable:
    """What both stores share: renewing a lease this build still holds."""

    def renew(self, mine: Owner) -> bool:
        """Write `mine` again if the lease is still mine; False when someone took it over."""
        with self.exclusive():
            current = self.read()
            if current is None or current.token != mine.token:
                return False
            self.write(mine)
            return True


class _LocalStore(_Renewable):
    """The lease on a local or network file system: writes are atomic renames, and taking
    the lease is serialized by flock."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LEASE)
        self.lock_path = os.path.join(workdir, LOCK)

    def read(self) -> Owner | None:
        try:
            with open(self.path, "rb") as fh:
                return _parse(fh.read())
        except FileNotFoundError:
            return None

    def write(self, owner: Owner) -> None:
        temporary = f"{self.path}.{owner.token}.tmp"
        with open(temporary, "w") as fh:
            json.dump(asdict(owner), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        import fcntl

        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def take(self, mine: Owner) -> bool:
        """Write `mine` if nobody alive holds the lease (decided again under the lock)."""
        with self.exclusive():
            current = self.read()
            if current is not None and current.dead_because() is None:
                return False
            self.write(mine)
            return True


class _ObjectStore(_Renewable):
    """The lease on an object store through Beam's FileSystems: write, wait, read back."""

    def __init__(self, workdir: str):
        self.path = FileSystems.join(workdir, LEASE)

    def read(self) -> Owner | None:
        try:
            with FileSystems.open(self.path) as fh:
                return _parse(fh.read())
        except Exception:  # noqa: BLE001 (a missing object raises the store's own error)
            return None

    def write(self, owner: Owner) -> None:
        with FileSystems.create(self.path) as fh:
            fh.write(json.dumps(asdict(owner)).encode("utf-8"))

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            FileSystems.delete([self.path])

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # no lock on an object store: take() writes and verifies

    def take(self, mine: Owner) -> bool:
        self.write(mine)
        for _ in range(2):
            time.sleep(OBJECT_STORE_SETTLE_S)
            current = self.read()
            if current is None or current.token != mine.token:
                return False
        return True


def _store(workdir: str):
    if "://" in workdir and not workdir.startswith("file://"):
        return _ObjectStore(workdir)
    return _LocalStore(workdir.removeprefix("file://"))


_HELD: dict[str, WorkdirLease] = {}  # this process's leases, by workdir


class WorkdirLease:
    """Hold `workdir` for one build: `with WorkdirLease(workdir, "build of x"): ...`."""

    def __init__(
        self,
        workdir: str,
        what: str,
        ttl_s: float | None = None,
        say: Callable[[str], None] = print,
        poll_s: float = 1.0,
        on_takeover: Callable[[Owner], None] = lambda dead: None,
    ):
        self.workdir = workdir.rstrip("/")
        self.store = _store(self.workdir)
        local = isinstance(self.store, _LocalStore)
        self.ttl_s = ttl_s or (LOCAL_TTL_S if local else OBJECT_STORE_TTL_S)
        self.owner = Owner.me(what, self.ttl_s)
        self.say = say
        self.poll_s = poll_s
        self.on_takeover = on_takeover
        self.lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- taking and giving back -------------------------------------------------------------
    def acquire(self) -> None:
        if isinstance(self.store, _LocalStore):
            os.makedirs(self.workdir, exist_ok=True)
        told = None
        while True:
            current = self.store.read()
            why_dead = current.dead_because() if current is not None else None
            if current is None or why_dead is not None:
                try:
                    taken = self.store.take(self.owner)
                except OSError as exc:
                    raise EnvironmentProblem(
                        f"workdir {self.workdir}: cannot write its lease ({exc.strerror or exc})"
                    ) from None
                if taken:
                    if current is not None:
                        self.say(
                            f"took over the lease of {self.workdir} from "
                            f"{current.describe()}: {why_dead}"
                        )
                        self.on_takeover(current)
                    break
                continue
            if told != current.token:
                self.say(
                    f"waiting for {self.workdir}: {current.describe()} holds it "
                    f"(renewed {time.time() - current.renewed_at:.0f} s ago; "
                    f"{current.when_replaced()})"
                )
                told = current.token
            time.sleep(self.poll_s)
        _HELD[self.workdir] = self
        self._renewer = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        _HELD.pop(self.workdir, None)
        current = self.store.read()
        if current is not None and current.token == self.owner.token:
            self.store.remove()

    def __enter__(self) -> WorkdirLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- keeping it ----------------------------------------------------------------------
    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.owner.renewed_at = time.time()
                if not self.store.renew(self.owner):
                    current = self.store.read()
                    taker = current.describe() if current else "nobody"
                    self.lost = f"the lease of {self.workdir} was taken over by {taker}"
                    return
            except OSError:  # a full disk, a network blip: the next round tries again
                continue

    def check(self) -> None:
        """Raise LeaseLost when another build holds the workdir now."""
        if self.lost:
            raise LeaseLost(f"{self.lost}; stopping before anything is committed")

    def note_slots(self, slots: list[str]) -> None:
        """Record the Prefect slot leases held now (written at once, then at each renewal)."""
        self.owner.slots = list(slots)
        if not self.lost:
            with contextlib.suppress(OSError):
                self.store.renew(self.owner)


def held(workdir: str) -> WorkdirLease | None:
    """This process's lease of `workdir`, if it holds one."""
    return _HELD.get(workdir.rstrip("/"))


def check_held(workdir: str) -> None:
    """Before committing into `workdir`: raise LeaseLost if this process held its lease and
    lost it (nothing is checked where no lease is held, e.g. in unit tests of a stage)."""
    lease = _HELD.get(workdir.rstrip("/"))
    if lease is not None:
        lease.check()
