"""The workdir lease: builds sharing a workdir take turns, a dead owner is replaced (at once
when it ran here, after its time to live elsewhere), and a build that lost its lease commits
nothing."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import asdict

import pytest

from pipelines import lease as leases
from pipelines.lease import LeaseLost, Owner, WorkdirLease, check_held


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _write(workdir, owner: Owner) -> None:
    (workdir / "_LEASE.json").write_text(json.dumps(asdict(owner)))


def test_a_second_build_waits_and_says_for_whom(tmp_path):
    said = []
    first = WorkdirLease(str(tmp_path), "build of recipe a")
    first.acquire()
    second = WorkdirLease(str(tmp_path), "build of recipe b", say=said.append, poll_s=0.05)
    waiter = threading.Thread(target=second.acquire)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive()
    assert said and said[0].startswith(f"waiting for {tmp_path}: build of recipe a (pid ")
    first.release()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert json.loads((tmp_path / "_LEASE.json").read_text())["what"] == "build of recipe b"
    second.release()
    assert not (tmp_path / "_LEASE.json").exists()


def test_a_dead_owner_on_this_machine_is_replaced_at_once(tmp_path):
    dead = Owner.me("build of recipe a", 60)
    dead.pid = _dead_pid()
    _write(tmp_path, dead)
    said, taken_from = [], []
    lease = WorkdirLease(str(tmp_path), "b", say=said.append, on_takeover=taken_from.append)
    started = time.monotonic()
    lease.acquire()
    assert time.monotonic() - started < 2
    assert said == [
        f"took over the lease of {tmp_path} from build of recipe a (pid {dead.pid} on "
        f"{dead.host}): its process is gone"
    ]
    assert taken_from[0].token == dead.token
    lease.release()


def test_an_owner_elsewhere_is_replaced_when_its_lease_expires(tmp_path):
    remote = Owner.me("build on another machine", ttl_s=1.0)
    remote.host, remote.boot_id = "elsewhere", "another-boot"
    _write(tmp_path, remote)
    said = []
    lease = WorkdirLease(str(tmp_path), "here", say=said.append, poll_s=0.1)
    started = time.monotonic()
    lease.acquire()
    waited = time.monotonic() - started
    assert 0.5 < waited < 5
    assert said[0].startswith(f"waiting for {tmp_path}: build on another machine")
    assert "not renewed for" in said[-1]
    lease.release()


def test_a_lease_file_cut_short_holds_nothing(tmp_path):
    (tmp_path / "_LEASE.json").write_text('{"token": "abc", "ho')
    with WorkdirLease(str(tmp_path), "b"):
        assert json.loads((tmp_path / "_LEASE.json").read_text())["what"] == "b"


@pytest.mark.parametrize("store", ["local", "object-store"])
def test_a_build_that_lost_its_lease_commits_nothing(tmp_path, monkeypatch, store):
    if store == "object-store":  # the write-then-read-back protocol, on a local folder
        monkeypatch.setattr(leases, "OBJECT_STORE_SETTLE_S", 0.05)
        monkeypatch.setattr(leases, "_store", lambda workdir: leases._ObjectStore(workdir))
    lease = WorkdirLease(str(tmp_path), "mine", ttl_s=0.3)
    lease.acquire()
    check_held(str(tmp_path))  # held: nothing to say
    thief = Owner.me("another build that thought this one dead", 60)
    _write(tmp_path, thief)
    time.sleep(0.5)  # a renewal round notices
    with pytest.raises(LeaseLost, match="taken over by another build"):
        check_held(str(tmp_path))
    lease.release()
    assert json.loads((tmp_path / "_LEASE.json").read_text())["token"] == thief.token
