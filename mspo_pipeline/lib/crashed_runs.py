"""Runs whose process was killed: marked failed, their concurrency slots given back.

A run worker killed with SIGKILL (OOM killer, ``kill -9``, a container stopped hard) cannot
report its own end. Dagster then keeps the run STARTED and keeps the slots of the ``mspo_api``
pool its steps held, and with a pool limit of 1 every later run of any day waits for that slot
forever ("Step blocked by limit for pool mspo_api"). Dagster's own remedy is its daemon's run
monitoring, which neither a CLI run (``dagster asset materialize``, ``mspo demo``) has, nor can
see a dead worker under the default run launcher (it has no worker health check).

So every run records which process runs its steps (run tags, ``record_worker``), and every run
looks, when it starts and while it waits, for runs whose recorded process on this host is gone
(``release_dead_runs``). Those are marked failed and their slots freed. A run is only touched
when its process is certainly gone (``ProcessIdentity.is_gone``): a live run, a run on another
host, or a run without our tags is left alone. ``mspo release-runs`` does the same by hand.

This module needs Dagster's instance API, so it is not plain Python; it is kept out of
``defs/`` because the ``MspoApi`` resource and the ``mspo`` command both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from mspo_pipeline.lib.api import Log
from mspo_pipeline.lib.processes import ProcessIdentity

WORKER_RUN_TAG = "mspo/worker_run"
"""The run id the worker tags were written for: a retry or re-execution copies its parent's
tags, and must not be judged by the parent's (dead) process."""
WORKER_HOST_TAG = "mspo/worker_host"
WORKER_PID_TAG = "mspo/worker_pid"
WORKER_STARTED_TAG = "mspo/worker_started"

IN_PROGRESS = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
"""States a killed worker leaves a run in; a run queued or starting holds no slot yet."""


@dataclass(frozen=True, slots=True)
class Slot:
    pool: str
    step_key: str
    claimed: bool
    """True for a slot held; False for a place in the pool's queue."""


@dataclass(frozen=True, slots=True)
class Released:
    """One run given up: what it was, what it held, and why."""

    run_id: str
    partition: str | None
    status_before: str
    status_after: str
    slots: tuple[Slot, ...]
    reason: str

    def describe(self) -> str:
        held = ", ".join(f"{s.pool}:{s.step_key}" for s in self.slots if s.claimed)
        queued = ", ".join(f"{s.pool}:{s.step_key}" for s in self.slots if not s.claimed)
        partition = f" (partition {self.partition})" if self.partition else ""
        change = (
            f"marked {self.status_after}"
            if self.status_after != self.status_before
            else f"already {self.status_after}"
        )
        return (
            f"run {self.run_id}{partition}, {self.status_before}: {self.reason}; {change}, "
            f"freed pool slots [{held or 'none'}], dropped queued steps [{queued or 'none'}]"
        )


def recorded_worker(run: dg.DagsterRun) -> ProcessIdentity | None:
    """The process ``record_worker`` tagged this very run with, if any."""
    tags = run.tags
    if tags.get(WORKER_RUN_TAG) != run.run_id or WORKER_HOST_TAG not in tags:
        return None
    try:
        pid = int(tags.get(WORKER_PID_TAG, ""))
    except ValueError:
        return None
    return ProcessIdentity(tags[WORKER_HOST_TAG], pid, tags.get(WORKER_STARTED_TAG, ""))


def _orchestrator_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid in the run's latest "Executing steps ... (pid: N)" engine event: the process
    that claims the pool slots, whatever the executor."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False, limit=100
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        metadata = data.metadata if data is not None else {}
        pid, steps = metadata.get("pid"), metadata.get("step_keys")
        if isinstance(pid, dg.TextMetadataValue) and steps is not None:
            try:
                return int(pid.value)
            except ValueError:
                return None
    return None


def record_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> ProcessIdentity | None:
    """Tag ``run`` with this process when this process runs its steps and claims its slots.

    Resources are set up in the process that executes the steps: the run worker itself with the
    in-process executor (this project's), a per-step child with the multiprocess one. A child
    must not be recorded: it ends with its step while the run goes on, and the run would look
    dead. So the tags are written only when this process is the one Dagster names as executing
    the run's steps; other runs are never swept automatically.
    """
    me = ProcessIdentity.current()
    if _orchestrator_pid(instance, run.run_id) != me.pid:
        return None
    instance.add_run_tags(
        run.run_id,
        {
            WORKER_RUN_TAG: run.run_id,
            WORKER_HOST_TAG: me.host,
            WORKER_PID_TAG: str(me.pid),
            WORKER_STARTED_TAG: me.started,
        },
    )
    return me


def _slots_of(instance: dg.DagsterInstance, run_id: str) -> tuple[Slot, ...]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return ()
    slots: list[Slot] = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        slots += [Slot(pool, c.step_key, True) for c in info.claimed_slots if c.run_id == run_id]
        slots += [
            Slot(pool, p.step_key, False)
            for p in info.pending_steps
            if p.run_id == run_id and p.assigned_timestamp is None
        ]
    return tuple(slots)


def release_run(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> Released:
    """End ``run`` in the instance (failed; canceled if it was canceling) and free its slots.

    The caller has established that no process executes it any more; the status is read again
    first so a run that ended meanwhile keeps the status it ended with.
    """
    current = instance.get_run_by_id(run.run_id) or run
    before = current.status
    if before == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(current, f"Marked canceled: {reason}")
    elif before in IN_PROGRESS or before == dg.DagsterRunStatus.STARTING:
        instance.report_run_failed(current, f"Marked failed: {reason}")
    slots = _slots_of(instance, run.run_id)
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    after = instance.get_run_by_id(run.run_id) or current
    return Released(
        run_id=run.run_id,
        partition=run.tags.get("dagster/partition"),
        status_before=before.value,
        status_after=after.status.value,
        slots=slots,
        reason=reason,
    )


def dead_runs(
    instance: dg.DagsterInstance, *, exclude_run_id: str | None = None
) -> list[tuple[dg.DagsterRun, ProcessIdentity]]:
    """Runs still in progress whose recorded worker on this host no longer exists."""
    host = ProcessIdentity.current().host
    candidates = instance.get_runs(
        filters=dg.RunsFilter(statuses=list(IN_PROGRESS), tags={WORKER_HOST_TAG: host})
    )
    found = []
    for run in candidates:
        worker = recorded_worker(run)
        if run.run_id != exclude_run_id and worker is not None and worker.is_gone():
            found.append((run, worker))
    return found


def release_dead_runs(
    instance: dg.DagsterInstance, *, current_run_id: str | None = None, log: Log | None = None
) -> list[Released]:
    """Release every in-progress run whose process on this host is gone; log each one."""
    released = []
    for run, worker in dead_runs(instance, exclude_run_id=current_run_id):
        by = f" (found by run {current_run_id})" if current_run_id else ""
        reason = (
            f"its run worker ({worker.describe()}) no longer exists, so it was killed without "
            f"being able to report it{by}"
        )
        done = release_run(instance, run, reason)
        released.append(done)
        if log is not None:
            log.warning(f"Released a crashed run: {done.describe()}")
    return released


def finished_runs_holding_slots(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs already ended (failed, canceled, succeeded) that still hold or queue for slots:
    what a run ended from outside (UI "terminate", run monitoring) leaves without a daemon."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    run_ids: set[str] = set()
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        run_ids |= {c.run_id for c in info.claimed_slots if c.run_id}
        run_ids |= {p.run_id for p in info.pending_steps}
    if not run_ids:
        return []
    return list(
        instance.get_runs(
            filters=dg.RunsFilter(
                run_ids=sorted(run_ids),
                statuses=[
                    dg.DagsterRunStatus.SUCCESS,
                    dg.DagsterRunStatus.FAILURE,
                    dg.DagsterRunStatus.CANCELED,
                ],
            )
        )
    )


def release_named_runs(
    instance: dg.DagsterInstance, run_ids: Iterable[str]
) -> tuple[list[Released], list[str]]:
    """Release the given runs, except those whose recorded process on this host still runs.

    Returns (released, refusals). A run recorded on another host, or never tagged, is released
    on the caller's word: they looked at it and know its process is gone.
    """
    released: list[Released] = []
    refused: list[str] = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            refused.append(f"run {run_id}: no such run in this instance")
            continue
        worker = recorded_worker(run)
        if (
            run.status in IN_PROGRESS
            and worker is not None
            and worker.is_on_this_host()
            and not worker.is_gone()
        ):
            refused.append(
                f"run {run_id}: its worker ({worker.describe()}) is still running; stop it first "
                "(or terminate the run in the UI)"
            )
            continue
        where = f" ({worker.describe()})" if worker is not None else ""
        released.append(release_run(instance, run, f"released by hand{where}"))
    return released, refused


def release_all(instance: dg.DagsterInstance) -> list[Released]:
    """``mspo release-runs`` without run ids: dead runs of this host, then slots still held by
    runs that have already ended."""
    released = release_dead_runs(instance)
    for run in finished_runs_holding_slots(instance):
        released.append(
            release_run(instance, run, f"it ended ({run.status.value}) but still held slots")
        )
    return released


def summary(released: Sequence[Released]) -> str:
    if not released:
        return "no crashed run holds anything: nothing to release"
    return "\n".join(f"released {done.describe()}" for done in released)
