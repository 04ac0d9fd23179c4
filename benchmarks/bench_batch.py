"""``livequant batch`` against a shell loop of ``livequant transcode``, chunked against sequential, and the
per-task overhead of Dask.

Run: ``python benchmarks/bench_batch.py [--copies 8] [--seconds 14] [--long-seconds 300] [--replay-seconds 30 0]``. Everything is timed through the
command users run (a subprocess), with os.getloadavg() printed next to each timing; outputs are decoded and
compared with the sequential transcode's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO.parent / "shared" / "quality"))

import cv2  # noqa: E402,F401  # before av (see livequant/sinks.py)
import av  # noqa: E402  # isort: skip
import numpy as np  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(command: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=False, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def looped(source: Path, target: Path, count: int) -> int:
    """``count`` frames of ``source``, played again from its start as needed, into one H.264 file with a
    keyframe every 2 s; returns ``count``."""
    frames = decode(source)
    with av.open(str(source)) as container:
        rate = container.streams.video[0].average_rate
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"g": str(int(2 * rate)), "preset": "veryfast",
                                                              "crf": "18"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i in range(count):
            picture = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
            picture.pts, picture.time_base = i, Fraction(1) / rate
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return count


def frames_of(path: Path):
    """The frames of a video, one at a time (a long clip does not fit in memory)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def compare(source: Path, sequential: Path, chunked: Path, seams: list[int], replay: float) -> None:
    """Print how the chunked output differs from the sequential one, and the static-region flicker
    (../shared/quality/metrics.py) across each seam against the chunked clip's median."""
    from metrics import static_flicker

    count = same = 0
    worst = float("inf")
    flicker, sequential_flicker = [], []
    previous = None
    for src, seq, got in zip(frames_of(source), frames_of(sequential), frames_of(chunked)):
        count += 1
        identical = np.array_equal(seq, got)
        same += identical
        worst = worst if identical else min(worst, psnr(seq, got))
        if previous is not None:
            flicker.append(static_flicker(previous[0], src, previous[2], got)[0])
            sequential_flicker.append(static_flicker(previous[0], src, previous[1], seq)[0])
        previous = (src, seq, got)
    median = statistics.median(flicker)
    at_seams = ", ".join(f"{s}: {flicker[s - 1]:.3f} (sequential {sequential_flicker[s - 1]:.3f})" for s in seams)
    above = sum(flicker[s - 1] > median for s in seams)
    print(f"    replay {replay:g} s: {count} frames, {same} identical to the sequential transcode, worst other frame "
          f"PSNR {worst:.1f} dB; flicker median {median:.4f}, {above} of {len(seams)} seams above it; "
          f"at the seams {at_seams}", flush=True)


def overhead(tasks: int = 200) -> tuple[float, float]:
    """ms per no-op Dask task (submit, run, result, one after another) on a 1-worker local cluster, and
    microseconds per progress event (``log_event``) on a worker."""
    from distributed import Client, LocalCluster

    def report(n):
        from distributed import get_worker

        worker = get_worker()
        start = time.perf_counter()
        for i in range(n):
            worker.log_event("livequant-progress", ("bench", i))
        return (time.perf_counter() - start) / n

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(abs, -1, pure=False).result()
        start = time.perf_counter()
        for i in range(tasks):
            client.submit(abs, -i, pure=False).result()
        per_task = (time.perf_counter() - start) / tasks
        per_event = client.submit(report, 2000, pure=False).result()
    return per_task * 1e3, per_event * 1e6


def copies(work: Path, cockatoo: Path, args: argparse.Namespace) -> None:
    """``args.copies`` copies of cockatoo: a shell loop of transcode, then batch on 1 and 2 workers."""
    inputs = work / "in"
    inputs.mkdir()
    first = work / "cockatoo.mp4"
    per_copy = looped(cockatoo, first, round(args.seconds * 20))
    for i in range(args.copies):
        shutil.copy(first, inputs / f"cockatoo{i}.mp4")
    frames = args.copies * per_copy
    print(f"\n{args.copies} copies of cockatoo's first {args.seconds:g} s (1280x720, {per_copy} frames each, "
          "re-encoded, no audio), defaults (-k 16), to H.264", flush=True)
    loop = " ; ".join(f"python -m livequant transcode in/cockatoo{i}.mp4 seq/cockatoo{i}.mp4 -q"
                      for i in range(args.copies))
    (work / "seq").mkdir()
    seconds = timed(loop, work)
    print(f"  shell loop of transcode : {seconds:7.1f} s  {frames / seconds:5.1f} fps  [{load()}]", flush=True)
    for workers in (1, 2):
        seconds = timed(f"python -m livequant batch in -o out{workers} --workers {workers} -q", work)
        same = all(len(decode(work / f"out{workers}" / f"cockatoo{i}.mp4")) == per_copy
                   for i in range(args.copies))
        print(f"  batch --workers {workers}      : {seconds:7.1f} s  {frames / seconds:5.1f} fps  "
              f"all outputs complete: {same}  [{load()}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=8, help="0: the long clip only")
    parser.add_argument("--seconds", type=float, default=14.0, help="seconds of cockatoo in each copy (all: 14)")
    parser.add_argument("--long-seconds", type=float, default=300.0, help="length of the long clip (cockatoo "
                        "played again and again)")
    parser.add_argument("--chunk-seconds", type=float, default=20.0, help="for the long clip")
    parser.add_argument("--replay-seconds", type=float, nargs="+", default=[30.0, 0.0],
                        help="chunked runs of the long clip, one per value")
    args = parser.parse_args()
    cockatoo = DATA / "cockatoo.mp4"
    if not cockatoo.exists():
        raise SystemExit(f"{cockatoo} not found")
    print(f"livequant batch benchmark; {os.cpu_count()} cores; {load()}", flush=True)
    ms, us = overhead()
    print(f"per-task overhead: {ms:.1f} ms per no-op Dask task (1 worker, sequential round trips); "
          f"progress event {us:.1f} us  [{load()}]", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        if args.copies:
            copies(work, cockatoo, args)
        long = work / "long.mp4"
        n = looped(cockatoo, long, round(args.long_seconds * 20))
        print(f"\nlong clip: cockatoo played {n / 280:.1f} times ({n} frames, {n / 20:.0f} s at 20 fps, keyframe "
              f"every 2 s; one shot to the cut detector), --chunk-seconds {args.chunk_seconds:g}, lossless H.264",
              flush=True)
        seconds = timed("python -m livequant transcode long.mp4 long-seq.mp4 -q --lossless --no-audio", work)
        print(f"  transcode (sequential)            : {seconds:7.1f} s  {n / seconds:5.1f} fps  [{load()}]",
              flush=True)
        for replay in args.replay_seconds:
            out = work / f"long-replay{replay:g}"
            seconds = timed(f"python -m livequant batch long.mp4 -o {out.name} --workers 2 -q --lossless --no-audio "
                            f"--chunk-seconds {args.chunk_seconds:g} --replay-seconds {replay:g}", work)
            print(f"  batch, 2 workers, --replay-seconds {replay:<3g}: {seconds:7.1f} s  {n / seconds:5.1f} fps  "
                  f"[{load()}]", flush=True)
            record = json.loads((out / "livequant-manifest.jsonl").read_text().splitlines()[-1])
            compare(long, work / "long-seq.mp4", out / "long.mp4", record["seams"], replay)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
