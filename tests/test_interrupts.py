"""Ctrl-C and SIGTERM at random moments of a real ``livequant transcode``: the output is either absent or a
file that decodes completely (with every frame the command says it wrote); never a corrupt or partial file.
Slow (about two minutes): run with ``pytest -m slow -s`` to see the outcomes."""

import collections
import random
import re
import signal
import subprocess
import sys
import time

import av
import pytest

from conftest import write_clip
from corpus import env
from livequant.interrupts import interrupts_held

TRIALS = 24
WROTE = re.compile(r"(?:interrupted|terminated): wrote (\d+) frames? to ")


def _start(args) -> subprocess.Popen:
    """``python -m livequant ARGS`` with SIGINT at its default (a shell may start tests with it ignored)."""
    return subprocess.Popen([sys.executable, "-m", "livequant", *map(str, args)], env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _decode_all(path) -> tuple[int, int]:
    """``(video frames, audio frames)`` decoded from the whole file; raises if any packet fails."""
    counts = collections.Counter()
    with av.open(str(path)) as container:
        for packet in container.demux():
            for frame in packet.decode():
                counts[packet.stream.type] += 1
    return counts["video"], counts["audio"]


def test_a_ctrl_c_while_held_is_recorded_and_python_s_handler_put_back():
    """Held so for ``batch``'s import of Dask: raised inside that import, the process ended by SIGINT after
    livequant had caught it and said "interrupted" (8 of 120 Ctrl-Cs 0.45-0.69 s in)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a test runner may have set another
    try:
        with interrupts_held() as interrupted:
            signal.raise_signal(signal.SIGINT)
            assert interrupted == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow
def test_random_signals_leave_no_output_or_a_complete_file(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", size=(320, 240), fps=30, frames=90, audio_seconds=3.0)
    started = time.monotonic()
    _start(["--version"]).communicate(timeout=60)
    startup = time.monotonic() - started  # imports: a signal then must leave nothing behind either
    started = time.monotonic()
    calibration = _start(["transcode", clip.path, tmp_path / "full.mp4", "-q"])
    _, err = calibration.communicate(timeout=120)
    assert calibration.returncode == 0, err
    whole = time.monotonic() - started
    rng = random.Random(20240607)
    outcomes = collections.Counter()
    rows = []
    for trial in range(TRIALS):
        sig = (signal.SIGINT, signal.SIGTERM)[trial % 2]
        folder = tmp_path / f"trial-{trial}"
        folder.mkdir()
        out = folder / "out.mp4"
        delay = rng.uniform(0.0, startup) if trial < 4 else rng.uniform(startup, whole * 1.05)
        process = _start(["transcode", clip.path, out, "--dither", "bayer"])
        time.sleep(delay)
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
        leftovers = sorted(p.name for p in folder.iterdir() if p != out)
        assert not leftovers, f"trial {trial}: partial or temporary files left: {leftovers}\n{err}"
        video = 0
        if out.exists():
            video, audio = _decode_all(out)  # raises on a corrupt file
            said = WROTE.search(err)
            expected = int(said[1]) if said else clip.frames  # the signal came after the end
            assert video == expected and video >= 1 and audio >= 1, (trial, video, audio, err)
            kind = "the frames so far" if said else "the complete file"
        else:
            assert process.returncode != 0, err
            kind = "no output"
        outcomes[kind] += 1
        rows.append(f"  {trial:2d} {signal.Signals(sig).name:7s} at {delay:4.1f} s: exit {process.returncode:4d}, "
                    f"{kind}{f' ({video} frames, decoded)' if video else ''}")
        assert "Traceback" not in err, err  # start-up included: `python -m livequant` imports lightly
    totals = ", ".join(f"{n}: {kind}" for kind, n in outcomes.items())
    print(f"\n{TRIALS} signals at random moments of a transcode of {clip.frames} frames (start-up {startup:.1f} s, "
          f"the whole run {whole:.1f} s):\n" + "\n".join(rows) + f"\n{totals}")
