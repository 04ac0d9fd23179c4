"""Many files, and long files cut into chunks, transcoded on a Dask cluster: ``livequant batch``.

The client (this process) finds the inputs, refuses name clashes and existing
outputs, reads the manifest, then submits the work to Dask workers:

- a short file is one task, the same transcode as ``livequant transcode``;
- a long file is first planned (one decode, scene cuts found by
  `livequant.track.scene_cuts`), then cut into chunks of about
  ``chunk_seconds`` at those cuts, each chunk one task (longest first),
  and the encoded chunks are joined without re-encoding, with the audio
  copied once from the source.

A chunk that starts at a scene cut gives exactly the frames the sequential
transcode gives from that cut on, because the palette track starts afresh
there. A shot longer than a chunk is cut at a keyframe instead. A chunk that
starts within ``replay_seconds`` of its shot's start first runs the quantizer
over the shot from its start, without writing those frames: it is then again
exactly the sequential transcode, and the seam moves to the frame of the next
`SEAM_WINDOW_SECONDS` where the output changes least where the picture stands
still (both chunks beside it find the same frame, since both reproduce the
sequential frames there). A chunk further in warms up over the `WARM_SECONDS`
before it, which brings its palette only close to the sequential one.

Every task writes under a temporary folder in OUTDIR and renames its output
into place only when complete. A worker that dies has its task run again
elsewhere, up to `ALLOWED_FAILURES` times (Dask's ``allowed-failures``); a task
that raises (a broken input) fails only its file, at once. Each finished or
failed file adds a line to the manifest ``OUTDIR/livequant-manifest.jsonl``,
which ``resume`` reads to skip finished work.

The modules: `~livequant.batch.inputs` (inputs, output names, the manifest),
`~livequant.batch.chunks` (where to cut), `~livequant.batch.tasks` (what the
workers run) and `~livequant.batch.client` (`run_batch`).
"""

# OpenCV before PyAV, whichever module is imported first: PyAV's bundled libxcb loaded first makes OpenCV windows
# hang (PyAV#978).
import cv2  # noqa: F401  # isort: skip

from livequant.batch.chunks import Chunk, plan_chunks
from livequant.batch.client import run_batch
from livequant.batch.inputs import MANIFEST, OUTPUT_SUFFIXES, BatchError, Item, find_inputs, settings_hash

__all__ = ["BatchError", "Chunk", "Item", "MANIFEST", "OUTPUT_SUFFIXES", "find_inputs", "plan_chunks", "run_batch",
           "settings_hash"]
