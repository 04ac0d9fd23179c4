"""The client's side of a batch: the cluster started (or reached), the tasks submitted and followed with a progress
bar, outputs moved into place and recorded in the manifest (`run_batch`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import multiprocessing.forkserver
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path

import av
import dask
from distributed import Client, KilledWorker, LocalCluster, WorkerPlugin, as_completed
from distributed.utils import get_mp_context
from tqdm import tqdm

from livequant.batch.chunks import REPLAY_SECONDS, Chunk
from livequant.batch.inputs import (MANIFEST, OUTPUT_SUFFIXES, BatchError, Item, input_fingerprint, read_manifest,
                                    settings_hash)
from livequant.batch.tasks import (PROGRESS_TOPIC, Cancelled, encode_task, join_task, options_for_task, plan_task,
                                   report_path, timed_call)
from livequant.errors import LivequantError, SourceError, UsageError, appeared_meanwhile, write_failed
from livequant.files import move_into_place
from livequant.interrupts import interrupts_held
from livequant.options import open_output
from livequant.sinks import check_target
from livequant.sources import is_animated, open_video

__all__ = ["ALLOWED_FAILURES", "JOINABLE", "run_batch"]

#: Outputs whose chunks join by stream copy; others (APNG: one frame count and numbering over the file) are
#: encoded whole.
JOINABLE = frozenset({".mp4", ".mov", ".mkv", ".webm", ".gif"})
#: Times a task is started again after the worker running it died (then it fails with `KilledWorker`).
ALLOWED_FAILURES = 2


def _check_encoding(items: list[Item], outdir: Path, options: argparse.Namespace) -> None:
    """Open each kind of output once, in a temporary folder, so that a suffix, codec or option FFmpeg
    refuses stops the batch before any work (`UsageError`, naming an output), not once per file on the workers."""
    with tempfile.TemporaryDirectory() as folder:
        for suffix, item in {Path(item.name).suffix.lower(): item for item in items}.items():
            if not options.to and suffix not in OUTPUT_SUFFIXES:
                raise UsageError(f"'{item.input}' would be written as {suffix}, which livequant does not write; "
                                 "give --to mp4 (or mkv, webm, gif)")
            trial = Path(folder) / Path(item.name).name
            try:
                open_output(options_for_task(options, "", trial, audio=False), argparse.Namespace(fps=None), ()).abort()
            except UsageError as e:
                raise UsageError(str(e).replace(str(trial), str(outdir / item.name))) from None


def _probe(path: Path) -> tuple[int, float] | None:
    """``(frames, seconds)`` of a video from its header, or None if the header does not tell; for an animated
    WebP, which FFmpeg here cannot read, its frames and 0 s (it is encoded whole)."""
    if path.suffix.lower() == ".webp" and is_animated(path):
        try:
            with open_video(path) as animation:
                return animation.frame_count, 0.0
        except SourceError:
            return None  # the task opens it again and says what is wrong
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seconds = (float(stream.duration * stream.time_base) if stream.duration
                       else container.duration / 1e6 if container.duration else None)
            rate = stream.average_rate or stream.guessed_rate
            frames = stream.frames or (round(seconds * rate) if seconds and rate else 0)
            return (frames, seconds) if seconds else None
    except (av.error.FFmpegError, IndexError, OSError):
        return None  # the task opens it again and says what is wrong


@dataclass
class _File:
    """The client's view of one item while the batch runs."""

    item: Item
    output: Path
    expected: int
    fingerprint: list[int]
    seconds: float = 0.0  # working time of its finished tasks
    chunks: list[Chunk] | None = None
    pieces: dict | None = None  # chunk index -> (piece path, first frame, its time), as they finish
    damage: str = ""  # what to tell of its damaged frames, from the task that decoded it whole
    failed: bool = False

    @property
    def source(self) -> str:
        """The input's absolute path, as the workers open it: a scheduler's workers run in other folders."""
        return str(self.item.input.absolute())


def run_batch(items: list[Item], outdir, options: argparse.Namespace, settings: dict, *,
              workers: int | None = None, scheduler: str | None = None, resume: bool = False,
              overwrite: bool = False, chunk_seconds: float = 20.0, replay_seconds: float = REPLAY_SECONDS,
              quiet: bool = False) -> tuple[list[str], list[str]]:
    """Transcode every item into ``outdir`` on a Dask cluster; return one line per failed input, and one
    per input done with damaged frames (skipped or patched by the decoder).

    Parameters
    ----------
    items : list of Item
    outdir : str or os.PathLike
        Created if missing.
    options : argparse.Namespace
        The colour, size and encoding options, as ``livequant transcode`` takes them.
    settings : dict
        What decides the output bytes; its `settings_hash` goes in the manifest.
    workers : int, optional
        Worker processes of the local cluster (default: the cores). They
        are forked from multiprocessing's fork server, started with Ctrl-C
        blocked if none runs yet in this process (other processes forked
        from it later keep Ctrl-C blocked too).
    scheduler : str, optional
        Address of a running Dask scheduler to use instead of a local cluster.
    resume : bool
        Skip the items the manifest records as done with the same settings and input.
    overwrite : bool
        Replace outputs that exist.
    chunk_seconds : float
        Cut files longer than 1.5 times this into chunks; 0 never cuts.
    replay_seconds : float
        A chunk that starts within this of its shot's start replays the shot first (and is exact).
    quiet : bool
        No progress bar.

    Raises
    ------
    BatchError
        An output exists (and neither ``overwrite`` nor ``resume`` covers it), before any work.
    SinkError
        An existing output is one of the inputs (by device and inode), a folder, or in a read-only folder.
    UsageError
        An output suffix, codec or encoder option that FFmpeg refuses, before any work.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise BatchError(f"output folder '{outdir}' is a file; give a folder (it is created if missing)")
    digest = settings_hash({**settings, "chunk_seconds": chunk_seconds, "replay_seconds": replay_seconds})
    records = read_manifest(outdir) if resume else {}
    todo, replaceable = [], set()  # outputs that may be replaced: existing ones allowed here, or all with -y
    inputs = [item.input for item in items]
    for item in items:
        output = outdir / item.name
        record = records.get(item.name)
        if output.exists():
            check_target(output, True, inputs)  # not an input (by inode), not a folder, in a writable folder
        same = (record is not None and record.get("settings") == digest
                and record.get("input") == str(item.input.resolve())
                and record.get("fingerprint") == input_fingerprint(item.input))
        report = report_path(output, options.report) if options.report else None
        if same and record.get("status") == "done" and output.is_file() and (report is None or report.is_file()):
            continue
        finished = record is not None and record.get("status") == "done"  # only then are its outputs the batch's
        for made in [output] + ([report] if report else []):
            exists = os.path.lexists(made)  # a link to nothing is a file there too
            if exists and not (overwrite or finished):
                raise BatchError(f"output '{made}' exists; use -y to overwrite it, or --resume to skip finished work")
            if exists or overwrite:
                replaceable.add(made)
        todo.append(item)
    if not todo:
        if not quiet:
            print(f"nothing to do: all {len(items)} outputs are done", flush=True)
        return [], []
    _check_encoding(todo, outdir, options)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=outdir.absolute(), prefix=".livequant-batch-"))  # workers run elsewhere
    except OSError as e:
        raise write_failed("write to the folder", outdir, e) from None
    try:
        with _client(workers, scheduler) as client:
            return _Run(client, todo, outdir, work, options, digest, chunk_seconds, replay_seconds, quiet,
                        replaceable).loop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None):
    """A Client on ``scheduler``, or on a `LocalCluster` of ``workers`` one-thread processes started here
    and shut down on exit."""
    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as e:  # no answer in Dask's connect timeout; an address it cannot parse
            raise BatchError(f"cannot reach the Dask scheduler at '{scheduler}': {e}; check the address and that "
                             "the scheduler runs (dask scheduler)") from None
        with client:
            yield client
        return
    with interrupts_held() as interrupted, dask.config.set({
            "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
            "distributed.worker.multiprocessing-method": "forkserver"}):
        _start_forkserver_deaf_to_interrupts()
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.CRITICAL)  # None: port 8787,
        # with a warning where another program has it
        with contextlib.ExitStack() as on_failure:
            on_failure.callback(cluster.close)
            client = on_failure.enter_context(Client(cluster))
            client.register_plugin(_IgnoreInterrupts())
            on_failure.pop_all()
    with cluster, client:
        if interrupted:
            raise KeyboardInterrupt
        yield client


def _start_forkserver_deaf_to_interrupts() -> None:
    """Start multiprocessing's fork server, from which the local workers are forked, with Ctrl-C blocked.

    A terminal's Ctrl-C reaches the workers too, and while they imported,
    before `_IgnoreInterrupts` ran, each printed a traceback. A process
    inherits the signal mask of the thread that starts it (Python's resource
    tracker starts so, bpo-33613): the server keeps Ctrl-C blocked, and so
    do the workers forked from it. Here it is blocked only while the server
    starts, and a Ctrl-C meanwhile is taken after. A server already running
    (started elsewhere in this process) is used as it is.
    """
    get_mp_context()  # the modules Dask preloads in the server
    resource_tracker.ensure_running()  # first: starting its process unblocks Ctrl-C in this thread
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class _IgnoreInterrupts(WorkerPlugin):
    """Local workers ignore Ctrl-C (a terminal sends it to them too): the client cancels their tasks and
    stops them."""

    def setup(self, worker) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Run:
    """One batch on a client: submit, follow, record."""

    def __init__(self, client, items, outdir, work, options, digest, chunk_seconds, replay_seconds, quiet,
                 replaceable):
        self.client, self.outdir, self.work, self.replaceable = client, outdir, work, replaceable
        self.options, self.digest = options, digest
        self.files: dict[str, _File] = {}
        self.tasks = {}  # future -> (file key, what, chunk index)
        self.progress: dict[str, int] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.done = 0
        self.pending = as_completed()
        probes = {item.name: _probe(item.input) for item in items}
        total = sum(p[0] for p in probes.values() if p)
        self.bar = tqdm(total=total, unit="frame", disable=quiet, dynamic_ncols=True, smoothing=0.1,
                        mininterval=0.25 if sys.stderr.isatty() else 5.0)
        client.subscribe_topic(PROGRESS_TOPIC, self._on_report)
        for item in sorted(items, key=lambda i: -(probes[i.name] or (0, 0))[0]):  # longest first
            probe = probes[item.name]
            output = outdir / item.name
            output.parent.mkdir(parents=True, exist_ok=True)
            file = self.files[item.name] = _File(item, output, probe[0] if probe else 0, input_fingerprint(item.input))
            if probe and chunk_seconds and probe[1] > 1.5 * chunk_seconds and output.suffix.lower() in JOINABLE:
                self._submit(item.name, "plan", None, plan_task, file.source, options, chunk_seconds, output.suffix,
                             replay_seconds, priority=probe[0])
            else:
                self._submit(item.name, "whole", None, encode_task, file.source,
                             str(self._temp(item.name, "whole", output.name)), options, item.name, str(work),
                             priority=probe[0] if probe else 0)

    def _temp(self, name: str, what: str, filename: str) -> Path:
        return self.work / hashlib.sha1(name.encode()).hexdigest()[:12] / what / filename

    def _submit(self, name, what, index, function, *args, priority: int = 0) -> None:
        future = self.client.submit(timed_call, function, *args, key=f"{what}-{index}-{name}-{self.work.name}",
                                    priority=priority, pure=False, retries=0)
        self.tasks[future] = (name, what, index)
        self.pending.add(future)

    def _on_report(self, event) -> None:
        key, frames = event[1]
        self.progress[key] = frames

    def loop(self) -> tuple[list[str], list[str]]:
        try:
            while self.tasks:
                batch = self.pending.next_batch(block=False)
                if not batch:
                    self._draw()
                    time.sleep(0.2)
                    continue
                for future in batch:
                    self._finished(future)
            self._draw()
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)  # running tasks stop (`livequant.batch.tasks`)
            self.client.cancel(list(self.tasks))
            raise
        finally:
            self.bar.close()
        return self.failures, self.warnings

    def _draw(self) -> None:
        self.bar.set_postfix_str(f"files {self.done} done, {len(self.failures)} failed of {len(self.files)}",
                                 refresh=False)
        self.bar.update(sum(self.progress.values()) - self.bar.n)

    def _finished(self, future) -> None:
        name, what, index = self.tasks.pop(future)
        file = self.files[name]
        if file.failed:
            return
        if future.status == "cancelled":
            self._fail(file, Cancelled("cancelled"))
            return
        if future.status != "finished":
            self._fail(file, future.exception())
            return
        result, seconds = future.result()
        file.seconds += seconds
        if what == "plan":
            (file.chunks, file.damage), file.pieces = result, {}
            if not file.chunks:  # it has transparent pixels that its output keeps: encoded whole (`plan_task`)
                self._submit(name, "whole", None, encode_task, file.source,
                             str(self._temp(name, "whole", file.output.name)), self.options, name, str(self.work),
                             priority=file.expected)
                return
            suffix = file.output.suffix
            for i, chunk in enumerate(file.chunks):
                piece = self._temp(name, f"chunk{i:05d}", f"piece{suffix}")
                key = f"{name}#{i}"
                self._submit(name, "chunk", i, encode_task, file.source, str(piece), self.options, key,
                             str(self.work), chunk, priority=chunk.warm + chunk.count)
            return
        if what == "chunk":
            _, first, offset = result
            file.pieces[index] = (str(self._temp(name, f"chunk{index:05d}", f"piece{file.output.suffix}")), first,
                                  offset)
            if len(file.pieces) == len(file.chunks):
                pieces = [file.pieces[i] for i in range(len(file.chunks))]
                temp = self._temp(name, "join", file.output.name)
                temp.parent.mkdir(parents=True, exist_ok=True)
                self._submit(name, "join", None, join_task, [p for p, _, _ in pieces], [t for _, _, t in pieces],
                             str(temp), file.source, self.options, priority=10**9)
            return
        temp = self._temp(name, what, file.output.name)
        moves = [(temp, file.output)]
        if self.options.report:
            moves.append((report_path(temp, self.options.report), report_path(file.output, self.options.report)))
        for made, path in moves:
            try:
                move_into_place(made, path, replace=path in self.replaceable)
            except FileExistsError:  # another program wrote it after the start's check
                self._fail(file, appeared_meanwhile(path, "output" if path == file.output else "report"))
                return
        if what == "whole":
            frames, file.damage = result
        else:
            frames = result
        if file.damage:
            self.warnings.append(f"{file.item.input}: {file.damage}")
        for key in [k for k in self.progress if k == name or k.startswith(f"{name}#")]:
            del self.progress[key]
        self.progress[name] = frames
        self.done += 1
        seams = [file.pieces[i][1] for i in range(1, len(file.chunks))] if file.chunks else []
        self._record(file, "done", frames, chunks=len(file.chunks) if file.chunks else 1, seams=seams,
                     **({"warning": file.damage} if file.damage else {}))
        if file.chunks:
            shutil.rmtree(temp.parent.parent, ignore_errors=True)

    def _fail(self, file: _File, error: BaseException) -> None:
        file.failed = True
        if isinstance(error, KilledWorker):
            message = (f"a worker died each of the {ALLOWED_FAILURES + 1} times it ran this input (a crash in "
                       "the decoder, or out of memory?)")
        elif isinstance(error, LivequantError):  # named by the output, not by the work folder's copy of it
            message = re.sub(rf"{re.escape(str(self.work))}/[^/']+/[^/']+/{re.escape(file.output.name)}",
                             lambda _: str(file.output), str(error))
        else:
            message = f"{type(error).__name__}: {error}"
        self.failures.append(f"{file.item.input}: {message}")
        for future, (name, _, _) in list(self.tasks.items()):
            if name == file.item.name:
                future.cancel()
        self.bar.total = max(0, self.bar.total - file.expected)
        for key in [k for k in self.progress if k == file.item.name or k.startswith(f"{file.item.name}#")]:
            del self.progress[key]
        self._record(file, "failed", 0, error=message)

    def _record(self, file: _File, status: str, frames: int, **extra) -> None:
        record = {"input": str(file.item.input.resolve()), "settings": self.digest, "output": file.item.name,
                  "status": status, "frames": frames, "seconds": round(file.seconds, 3),
                  "fingerprint": file.fingerprint, **extra}
        with open(self.outdir / MANIFEST, "ab+") as manifest:  # appending: the position starts at the end
            if manifest.tell():
                manifest.seek(-1, os.SEEK_END)
                if manifest.read(1) != b"\n":  # a line torn by a crash: end it, or this record joins it
                    manifest.write(b"\n")
            manifest.write(json.dumps(record).encode() + b"\n")
