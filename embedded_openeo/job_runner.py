"""Runs queued batch jobs in the background, at most ``max_running_jobs`` at once, as CDSE does.

The runner owns every status change after creation: created -> queued -> running -> finished |
error | canceled, and queued -> created on a stop before the job ran. Jobs found ``running`` when it
starts were interrupted by a backend shutdown or crash: they are queued again with a warning log
line and run from the start, so no job is lost.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coherence_assets.cdse_facts import opera_burst_key, relative_orbit_of_burst_id
from embedded_openeo.job_store import (
    ACTIVE_STATUSES,
    CANCELED,
    CREATED,
    ERROR,
    FINISHED,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    JobStore,
    StoredJob,
)
from embedded_openeo.pair_planning import PairPlanningError, plan_job
from embedded_openeo.processes import InvalidProcessError, parse_job_process
from embedded_openeo.results import ResultItem, output_file_name, write_coherence_geotiff
from embedded_openeo.synthetic_scene import compute_pair_coherence

logger = logging.getLogger(__name__)

CREDITS_PER_MEGAPIXEL = 10.0
# Two complex64 SLCs, their products and box sums: about 40 bytes held per output pixel.
BYTES_PER_PIXEL_IN_MEMORY = 40
RESTART_MESSAGE = (
    "The backend restarted while this job was running; the job was queued again and runs from the start."
)


class JobFailedError(RuntimeError):
    """A failure the job's owner must read in the error logs (as opposed to a backend bug)."""


@dataclass
class _ActiveJob:
    thread: threading.Thread | None = None
    interrupt: threading.Event = field(default_factory=threading.Event)
    canceled: bool = False
    deleted: bool = False


class JobRunner:
    """Background worker threads over the job store; the HTTP layer asks it to start, stop and delete."""

    def __init__(self, state: Any, store: JobStore, results_dir: Path, poll_seconds: float = 0.5) -> None:
        self._state = state
        self._config = state.config
        self._store = store
        self._results_dir = results_dir
        self._poll_seconds = poll_seconds
        self._active: dict[str, _ActiveJob] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="openeo-job-dispatcher", daemon=True
        )

    def result_dir(self, job_id: str) -> Path:
        return self._results_dir / job_id

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue jobs a previous backend left running, then start dispatching."""
        for job in self._store.jobs_with_status(RUNNING):
            self._store.add_log(job.id, "warning", RESTART_MESSAGE, code="BackendRestarted")
            self._store.set_status(job.id, QUEUED, expected=[RUNNING])
            logger.warning("job %s: running -> queued (interrupted by a backend restart)", job.id)
        self._dispatcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dispatching and abandon running jobs; they stay ``running`` and resume on the next start."""
        self._stopping.set()
        self._wakeup.set()
        with self._lock:
            active = list(self._active.values())
        for job in active:
            job.interrupt.set()
        self._dispatcher.join(timeout)
        for job in active:
            if job.thread is not None:
                job.thread.join(timeout)

    # --- requests from the API ----------------------------------------------------------------------

    def enqueue(self, job: StoredJob) -> None:
        """Queue a job (a no-op when it is already queued or running); earlier results are discarded."""
        if job.status in ACTIVE_STATUSES:
            return
        # under the dispatcher's lock: a dispatcher woken by another start could otherwise claim the
        # job between its status change and the clean-up below, and lose its new output folder to it
        with self._lock:
            if not self._store.set_status(job.id, QUEUED, expected=[CREATED, *TERMINAL_STATUSES]):
                return
            self._store.replace_result_items(job.id, [])
            shutil.rmtree(self.result_dir(job.id), ignore_errors=True)
            self._store.add_log(job.id, "info", "Job queued.")
        logger.info("job %s: %s -> queued", job.id, job.status)
        self._wakeup.set()

    def cancel(self, job_id: str) -> None:
        """Stop a job: a queued one goes back to ``created``, a running one ends ``canceled``."""
        with self._lock:
            if self._store.set_status(job_id, CREATED, expected=[QUEUED]):
                self._store.add_log(job_id, "info", "Job stopped before it ran.")
                logger.info("job %s: queued -> created (stopped)", job_id)
                return
            active = self._active.get(job_id)
            if active is not None:
                active.canceled = True
                active.interrupt.set()

    def delete(self, job_id: str) -> None:
        """Cancel the job if needed and remove it with its logs and files.

        A running job's files are removed by its worker once it has stopped writing them: removing
        them under its feet would fail the write it is in the middle of.
        """
        with self._lock:
            active = self._active.get(job_id)
            if active is not None:
                active.deleted = True
                active.interrupt.set()
            self._store.delete_job(job_id)
        if active is None:
            shutil.rmtree(self.result_dir(job_id), ignore_errors=True)
        logger.info(
            "job %s: deleted%s",
            job_id,
            " (its worker stops after the pair it is computing)" if active else "",
        )

    # --- dispatching --------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._fill_free_slots()
            self._wakeup.wait(self._poll_seconds)
            self._wakeup.clear()

    def _fill_free_slots(self) -> None:
        with self._lock:
            while len(self._active) < self._config.max_running_jobs and not self._stopping.is_set():
                job = self._store.claim_next_queued()
                if job is None:
                    return
                logger.info("job %s: queued -> running", job.id)
                active = _ActiveJob()
                active.thread = threading.Thread(
                    target=self._run, args=(job, active), name=f"openeo-job-{job.id}", daemon=True
                )
                self._active[job.id] = active
                active.thread.start()

    def _run(self, job: StoredJob, active: _ActiveJob) -> None:
        try:
            self._execute(job, active)
        except (InvalidProcessError, PairPlanningError, JobFailedError) as error:
            self._fail(job.id, str(error))
        except Exception as error:
            if active.deleted:  # nobody can read the job any more: a failure after deletion is no news
                logger.info("job %s: its worker stopped after the job was deleted (%r)", job.id, error)
            else:
                logger.exception("job %s: unexpected failure", job.id)
                self._fail(job.id, f"Internal error while processing the job: {error!r}")
        finally:
            with self._lock:
                self._active.pop(job.id, None)
            if active.deleted:
                shutil.rmtree(self.result_dir(job.id), ignore_errors=True)
            self._wakeup.set()

    def _execute(self, job: StoredJob, active: _ActiveJob) -> None:
        started, cpu_started = time.monotonic(), time.thread_time()
        request = parse_job_process(job.process, self._config.offers_retired_processes)
        self._store.add_log(
            job.id,
            "info",
            f"Started {request.process_id} with {request.given_parameters()}, "
            f"coherence window {request.coherence_window_rg}x{request.coherence_window_az}.",
        )
        injected = self._state.faults.take_job_error()
        if injected is not None:
            raise JobFailedError(injected)
        plan = plan_job(request, self._state.archive, self._state.bursts)
        pairs = plan.pairs
        try:
            footprint = self._state.bursts.footprint(plan.burst_id, plan.sub_swath)
            burst_key = opera_burst_key(
                relative_orbit_of_burst_id(plan.burst_id, plan.sub_swath), plan.burst_id, plan.sub_swath
            )
        except ValueError as error:
            raise JobFailedError(str(error)) from error
        self._store.add_log(job.id, "info", f"Computing {len(pairs)} pair(s) of burst {burst_key}.")
        output_dir = self.result_dir(job.id)
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.mkdir(parents=True)
        items: dict[str, ResultItem] = {}
        pixels = 0
        for index, pair in enumerate(pairs, start=1):
            if active.interrupt.is_set():
                break
            file_name = output_file_name(request, pair, self._config.result_naming)
            if file_name in items:
                self._store.add_log(
                    job.id,
                    "warning",
                    f"Pair {index}/{len(pairs)} repeats {file_name} from a duplicate catalogue record "
                    f"({pair.reference['ParentProductName']} / {pair.secondary['ParentProductName']}); "
                    "it is computed again and overwrites the same file.",
                )
            coherence, grid = compute_pair_coherence(
                burst_key,
                footprint,
                pair.reference_start.date(),
                pair.secondary_start.date(),
                window_rg=request.coherence_window_rg,
                window_az=request.coherence_window_az,
                pixel_size=self._config.pixel_size,
                max_shape=self._config.scene_shape,
            )
            size = write_coherence_geotiff(
                output_dir / file_name, coherence, grid, band_name=f"coh_{request.polarization}"
            )
            items[file_name] = ResultItem.describe(
                request, pair, file_name, grid, footprint, size, self._config.result_naming
            )
            pixels += coherence.size
            self._store.set_progress(job.id, 100.0 * index / len(pairs))
            self._store.add_log(job.id, "info", f"Pair {index}/{len(pairs)} done: {file_name}.")
            if self._config.job_seconds_per_pair > 0:
                active.interrupt.wait(self._config.job_seconds_per_pair)
        if active.deleted or (active.interrupt.is_set() and not active.canceled):
            return  # deleted, or abandoned by a backend shutdown: the next start re-queues it
        self._store.replace_result_items(job.id, [(name, item.to_json()) for name, item in items.items()])
        if active.canceled:
            self._store.set_status(job.id, CANCELED, expected=[RUNNING], progress=self._progress(job.id))
            self._store.add_log(job.id, "info", f"Job canceled after {len(items)} of {len(pairs)} pair(s).")
            logger.info("job %s: running -> canceled", job.id)
            return
        duration = time.monotonic() - started
        megapixels = pixels / 1e6
        usage = {
            "cpu": {"value": round(time.thread_time() - cpu_started, 3), "unit": "cpu-seconds"},
            "memory": {
                "value": round(pixels / len(pairs) * BYTES_PER_PIXEL_IN_MEMORY / 1e6 * duration, 3),
                "unit": "mb-seconds",
            },
            "duration": {"value": round(duration, 3), "unit": "seconds"},
            "input_pixel": {"value": round(megapixels, 6), "unit": "mega-pixel"},
        }
        costs = round(CREDITS_PER_MEGAPIXEL * megapixels, 4)
        self._store.set_status(job.id, FINISHED, expected=[RUNNING], progress=100.0, costs=costs, usage=usage)
        self._store.add_log(job.id, "info", f"Job finished: {len(items)} file(s), {costs} credits.")
        logger.info("job %s: running -> finished (%d files)", job.id, len(items))

    def _progress(self, job_id: str) -> float | None:
        job = self._store.get_job(job_id)
        return None if job is None else job.progress

    def _fail(self, job_id: str, message: str) -> None:
        if self._store.set_status(job_id, ERROR, expected=[RUNNING], progress=self._progress(job_id)):
            self._store.add_log(job_id, "error", message, code="JobFailed")
            logger.info("job %s: running -> error (%s)", job_id, message)
