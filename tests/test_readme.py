"""The README's Python example runs as written, and its "How it works" names every module."""

import re
from pathlib import Path

import av
import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(tmp_path, monkeypatch, rng):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace = {
        "frames": [rng.integers(0, 256, (36, 48, 3), dtype=np.uint8) for _ in range(3)],
        "image": rng.integers(0, 256, (40, 30, 3), dtype=np.uint8),
    }
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "out.mp4").stat().st_size > 0
    with av.open(str(tmp_path / "out.gif")) as gif:  # frames without times 1/15 s apart, none dropped
        assert [round(f.time, 2) for f in gif.decode(video=0)] == [0.0, 0.07, 0.13]  # in 1/100 s
    assert namespace["small"].shape == (40, 30, 3)
    qf = namespace["qf"]  # colours, indices and palette of one and the same frame
    np.testing.assert_array_equal(qf.palette.colors[qf.indices], namespace["out"])


def test_how_it_works_names_every_module():
    section = README.read_text().split("## How it works", 1)[1].split("\n## ", 1)[0]
    package = README.parent / "livequant"
    # a module as `cli.py`; a package's modules as `sources/video.py`, and the package itself as `sources/`
    modules = sorted(path.name if path.parent == package else
                     str(path.relative_to(package)).removesuffix("__init__.py") for path in package.rglob("*.py"))
    assert [name for name in modules if f"`{name}`" not in section] == []
