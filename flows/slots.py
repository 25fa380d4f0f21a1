"""Slots of Prefect's global concurrency limits for the heavy stages (`llama-recipe-<stage>`,
sized by the recipe's `orchestration.concurrency`), held so that a dead build never keeps one
for long: each slot is a lease its run renews; the workdir lease records it, so that the
build taking over a dead build's workdir gives it back at once; any other comes free when
its lease expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger

from pipelines.lease import Owner, held

# Slots of global concurrency limits are leases the holder renews: a run that dies keeps its
# slot until the lease expires (Prefect's shortest is 60 s) and the server's repossessor
# service frees it (every 5 s on servers llama-recipe starts; see flows/server.py).
SLOT_LEASE_S = 60.0


@contextmanager
def stage_slot(name: str, limit: int | None, workdir: str) -> Iterator[None]:
    """Hold one slot of a global concurrency limit, created with `limit` when missing, under
    a lease renewed while the block runs; say so when the slot is not free at once. The
    workdir lease records the slot, so that a build taking over from this one if it dies
    gives the slot back at once instead of after the lease expires."""
    if not limit:
        yield
        return
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except ObjectAlreadyExists:  # another run created it first
                pass
        told = False
        while True:
            try:
                answer = client.increment_concurrency_slots_with_lease(
                    [name], 1, mode="concurrency", lease_duration=SLOT_LEASE_S
                )
                lease_id = answer.json()["lease_id"]
                break
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: every slot is taken
                    raise
                if not told:
                    current = client.read_global_concurrency_limit_by_name(name)
                    logger.info(
                        "waiting for a slot of the Prefect concurrency limit %s (%d of %d in "
                        "use by other runs; a run that died frees its slot within %.0f s)",
                        name,
                        current.active_slots,
                        current.limit,
                        SLOT_LEASE_S + 15,
                    )
                    told = True
                wait = float(exc.response.headers.get("Retry-After") or 2)
                time.sleep(min(max(wait, 0.5), 10.0))
    workdir_lease = held(workdir)
    if workdir_lease is not None:
        workdir_lease.note_slots([lease_id])
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_slot, args=(lease_id, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            with get_client(sync_client=True) as client:
                client.release_concurrency_slots_with_lease(lease_id)
        except Exception:  # noqa: BLE001 (the server is away: the lease expires by itself)
            pass
        if workdir_lease is not None:
            workdir_lease.note_slots([])


def _renew_slot(lease_id: str, stop: threading.Event) -> None:
    from prefect.client.orchestration import get_client

    while not stop.wait(SLOT_LEASE_S / 3):
        try:
            with get_client(sync_client=True) as client:
                client.renew_concurrency_lease(lease_id, SLOT_LEASE_S)
        except Exception:  # noqa: BLE001 (a blip; the lease has two more renewals to go)
            pass


def give_back_slots(dead: Owner) -> None:
    """Release the Prefect slots a dead build held (recorded in its workdir lease)."""
    if not dead.slots:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for lease_id in dead.slots:
            try:
                client.release_concurrency_slots_with_lease(lease_id)
            except Exception:  # noqa: BLE001 (already expired, or another server's)
                continue
    get_run_logger().info("gave back the concurrency slots the dead build held: %s", dead.slots)
