"""`dlkit batch`: many train/evaluate/predict jobs from one YAML file, each in its own process.

A job runs as `python -m dlkit ... --json` with its stderr in its own log and its JSON result beside
it, so one job's crash, memory blow-up or Ctrl-C cannot take the others down. Workers share the CPU
threads (or get one GPU each); a failed job's dependants are skipped with the reason; `batch.json`,
rewritten after every change, is both the record and what lets a re-run skip finished jobs.

The batch folder (default `<file stem>.batch/` beside the file):

    batch.json              status, duration, monitored metric, run, log and hash per job
    logs/<job>.log          the job's stderr, after a header with its command line
    results/<job>.json      the job's --json result
    runs/<job>/             run folders of train jobs without their own `out`
    predictions/<job>.jsonl predictions of predict jobs without their own `output`
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dlkit.atomic import atomic_write_text
from dlkit.errors import DlkitError, UserError
from dlkit.jobs.batch_spec import Job, load_jobs
from dlkit.jobs.batch_view import BatchView

FINISHED = ("done", "cached")  # a job in one of these states has what its dependants need
POLL_SECONDS = 0.2
GRACE_SECONDS = 20  # how long stopped jobs get to save a checkpoint and exit on their own


class BatchInterrupted(DlkitError):
    exit_code = 130


@dataclass
class Slot:
    """A worker: the job it runs, its process, and the GPU it owns (if any)."""

    index: int
    gpu: str | None
    job: Job | None = None
    process: subprocess.Popen | None = None


def batch(
    file: Path,
    out: Path | None = None,
    parallel: int | None = None,
    gpus: str | None = None,
    fail_fast: bool = False,
    rerun: bool = False,
    dry_run: bool = False,
) -> dict:
    """Run (or with `dry_run`, list) the file's jobs; the batch record (what batch.json holds)."""
    file = Path(file).expanduser()
    out = Path(out).expanduser().resolve() if out else file.resolve().parent / f"{file.stem}.batch"
    gpu_list = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else []
    workers = parallel or max(1, len(gpu_list))
    if workers < 1:
        raise UserError(f"--parallel must be at least 1, got {parallel}")
    jobs = load_jobs(file, out)
    previous = _previous(out / "batch.json") if not rerun else {}
    records = {job.name: _record(job, out) for job in jobs}
    for job in jobs:
        if _completed(job, previous.get(job.name)):
            records[job.name] = {
                **previous[job.name],
                "status": "cached",
                "reason": "done before, same config",
            }
    if dry_run:
        return _dry_run(file, out, jobs, records)
    runner = Runner(file, out, jobs, records, workers, gpu_list, fail_fast)
    return runner.run()


def _previous(path: Path) -> dict[str, dict]:
    try:
        return {r["name"]: r for r in json.loads(path.read_text())["jobs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no record, or an unreadable one: run everything


def _completed(job: Job, before: dict | None) -> bool:
    """Finished before with the same hash, and its outputs are still there."""
    if not before or before.get("status") not in FINISHED or before.get("hash") != job.hash:
        return False
    if job.command == "train":
        return (Path(job.run) / "eval.json").is_file()
    return job.command != "predict" or Path(job.output).is_file()


def _record(job: Job, out: Path) -> dict:
    return {
        "name": job.name,
        "command": shlex.join(["dlkit", *job.argv]),
        "needs": job.needs,
        "hash": job.hash,
        "status": "pending",
        "reason": None,
        "started": None,
        "ended": None,
        "duration_s": None,
        "exit_code": None,
        "monitor": None,
        "metric": None,
        "run": job.run,
        "output": job.output,
        "log": str(out / "logs" / f"{job.slug}.log"),
    }


def _dry_run(file: Path, out: Path, jobs: list[Job], records: dict[str, dict]) -> dict:
    for record in records.values():
        if record["status"] == "pending":
            record["status"] = "would run"
    BatchView.print_plan(jobs, records)
    return _summary(file, out, records, "dry-run")


def _summary(file: Path, out: Path, records: dict[str, dict], status: str) -> dict:
    counts: dict[str, int] = {}
    for r in records.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "file": str(file.resolve()),
        "folder": str(out),
        "status": status,
        "counts": counts,
        "failed": [r["name"] for r in records.values() if r["status"] == "failed"],
        "jobs": list(records.values()),
    }


class Runner:
    """The scheduling loop: start ready jobs in free slots, collect finished ones, keep batch.json."""

    def __init__(self, file, out, jobs, records, workers: int, gpus: list[str], fail_fast: bool):
        self.file, self.out, self.jobs, self.records = file, out, jobs, records
        self.fail_fast = fail_fast
        self.slots = [Slot(i, gpus[i % len(gpus)] if gpus else None) for i in range(workers)]
        self.threads = max(1, _thread_budget() // workers)
        self.waiting = [j for j in jobs if records[j.name]["status"] == "pending"]
        self.view = BatchView(jobs, records)

    def run(self) -> dict:
        for sub in ("logs", "results"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self._save("running")
        stopping = None
        with self.view.live():
            try:
                while self.waiting or self._busy():
                    self._collect()
                    if self.fail_fast and any(r["status"] == "failed" for r in self.records.values()):
                        stopping = "a job failed and --fail-fast is on"
                        break
                    self._start_ready()
                    self.view.refresh()
                    time.sleep(POLL_SECONDS)
            except BaseException as exc:  # noqa: BLE001 - stop the children whatever happened
                if not _is_interrupt(exc):
                    self._stop("the batch itself failed")
                    raise
                stopping = "interrupted"
            if stopping:
                self._stop(stopping)
            self.view.refresh()
        status = "interrupted" if stopping == "interrupted" else self._overall()
        result = _summary(self.file, self.out, self.records, status)
        self._save(status)
        self.view.print_summary(self.out)
        if stopping == "interrupted":
            done = [r["name"] for r in self.records.values() if r["status"] in FINISHED]
            raise BatchInterrupted(
                f"interrupted; finished: {', '.join(done) or 'none'}",
                f"the record is in {self.out / 'batch.json'}; run the same command again to do the rest",
            )
        return result

    def _busy(self) -> bool:
        return any(s.process is not None for s in self.slots)

    def _overall(self) -> str:
        return "failed" if any(r["status"] == "failed" for r in self.records.values()) else "done"

    def _start_ready(self) -> None:
        for job in list(self.waiting):
            needs = [self.records[n] for n in job.needs]
            blocked = [r for r in needs if r["status"] not in (*FINISHED, "pending", "running")]
            if blocked:
                self._skip(job, f"needs '{blocked[0]['name']}', which {_past(blocked[0]['status'])}")
                continue
            if any(r["status"] not in FINISHED for r in needs):
                continue
            free = next((s for s in self.slots if s.process is None), None)
            if free is None:
                return
            self.waiting.remove(job)
            self._launch(job, free)

    def _skip(self, job: Job, reason: str) -> None:
        self.waiting.remove(job)
        self.records[job.name].update(status="skipped", reason=reason)
        self._save("running")

    def _launch(self, job: Job, slot: Slot) -> None:
        record = self.records[job.name]
        if job.command == "train" and Path(job.run).is_relative_to(self.out / "runs"):
            shutil.rmtree(job.run, ignore_errors=True)  # the batch's own folder from an earlier attempt
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        log = Path(record["log"])
        result = self.out / "results" / f"{job.slug}.json"
        result.unlink(missing_ok=True)
        gpu = f", GPU {slot.gpu}" if slot.gpu is not None else ""
        log.write_text(
            f"$ {record['command']}\n# in {self.file.resolve().parent}, {self.threads} threads{gpu}\n"
        )
        with open(log, "a", encoding="utf-8") as err, open(result, "w", encoding="utf-8") as stdout:
            # -P: the job's folder (the YAML's) must not shadow the installed dlkit
            slot.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "dlkit", *job.argv],
                cwd=self.file.resolve().parent,
                stdout=stdout,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        slot.job = job
        record.update(status="running", reason=None, started=time.time(), ended=None)
        self._save("running")

    def _collect(self) -> None:
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            self._finish(slot, "done" if slot.process.returncode == 0 else "failed")

    def _finish(self, slot: Slot, status: str, reason: str | None = None) -> None:
        job, code = slot.job, slot.process.returncode
        record = self.records[job.name]
        ended = time.time()
        record.update(
            status=status, ended=ended, duration_s=round(ended - record["started"], 2), exit_code=code
        )
        result = _read_result(self.out / "results" / f"{job.slug}.json")
        if status == "done":
            monitor = result.get("monitor")
            record.update(monitor=monitor, metric=(result.get("metrics") or {}).get(monitor))
            if job.command == "predict":
                record.update(monitor="predictions", metric=result.get("count"))
        else:
            record["reason"] = reason or _last_error(Path(record["log"])) or f"exit code {code}"
        slot.job = slot.process = None
        self._save("running")

    def _stop(self, reason: str) -> None:
        """Stop running jobs (SIGINT first: a training run keeps its checkpoint), mark the rest."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        try:
            running = [s for s in self.slots if s.process is not None]
            for slot in running:
                if slot.process.poll() is None:
                    slot.process.send_signal(signal.SIGINT)
            deadline = time.time() + GRACE_SECONDS
            for slot in running:
                try:
                    slot.process.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    slot.process.kill()
                    slot.process.wait()
                self._finish(slot, "stopped", reason)
            for job in self.waiting:
                self.records[job.name].update(status="not run", reason=reason)
            self.waiting = []
        finally:
            signal.signal(signal.SIGINT, previous)

    def _save(self, status: str) -> None:
        record = _summary(self.file, self.out, self.records, status)
        atomic_write_text(self.out / "batch.json", json.dumps(record, indent=2, default=str) + "\n")


def _thread_budget() -> int:
    """The CPU threads all workers share: OMP_NUM_THREADS when the user set it, else the usable cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(given)) if given.isdigit() and int(given) > 0 else cores


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C (KeyboardInterrupt) or the CLI's SIGINT/SIGTERM exception (it carries the signal)."""
    return isinstance(exc, KeyboardInterrupt) or hasattr(exc, "signum")


def _past(status: str) -> str:
    return {"failed": "failed", "skipped": "was skipped", "stopped": "was stopped"}.get(status, "did not run")


def _read_result(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8").strip().splitlines()
        return json.loads(text[-1]) if text else {}
    except (OSError, ValueError):
        return {}


def _last_error(log: Path) -> str | None:
    """The job's own error message (the first line of its last `error:`), for the summary table."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1].removeprefix("error:").strip() if errors else None
