"""The quality report: its figures against ../shared/quality/metrics.py, its JSON and its picture."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livequant.cli import main
from livequant.frames import QuantizedFrame
from livequant.palette import Palette
from livequant.quantizer import Quantizer
from livequant.report import QualityReport, ciede2000, srgb_to_lab
from livequant.sources import VideoFile

METRICS = Path(__file__).resolve().parents[2] / "shared" / "quality" / "metrics.py"


@pytest.fixture(scope="module")
def metrics():
    """../shared/quality/metrics.py as a module; skips where it (or scikit-image, which it uses) is absent."""
    if not METRICS.is_file():
        pytest.skip(f"{METRICS} is not here")
    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location("shared_metrics", METRICS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quantized(path, **options):
    """Every frame of a video quantized (synchronously: the refits land at fixed frames)."""
    quantizer = Quantizer(**options)
    with VideoFile(path) as video:
        return [quantizer.process(frame, t) for frame, t in video]


def test_lab_and_ciede2000_match_scikit_image(metrics, rng):
    from skimage.color import deltaE_ciede2000, rgb2lab

    a = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    b[:50] = a[:50]  # equal colours
    b[50:100] = a[50:100, :1]  # grays
    a[100:150] = (128, 128, 128)
    lab_a = rgb2lab(a.reshape(-1, 1, 3).astype(np.float32) / 255).reshape(-1, 3)
    lab_b = rgb2lab(b.reshape(-1, 1, 3).astype(np.float32) / 255).reshape(-1, 3)
    np.testing.assert_allclose(srgb_to_lab(a), lab_a, atol=1e-3)
    np.testing.assert_allclose(ciede2000(srgb_to_lab(a), srgb_to_lab(b)), deltaE_ciede2000(lab_a, lab_b), atol=1e-3)


def test_figures_equal_the_shared_metrics_on_a_generated_clip(metrics, make_clip):
    clip = make_clip("clip.mp4", frames=24)
    qframes = _quantized(clip.path, n_colors=8, refit_every=4)
    report = QualityReport(de_pixels=64 * 48)  # no more pixels than sampled: measured whole
    video = metrics.VideoMetrics(de_max_pixels=10**6)
    for q in qframes:
        report.write(q)
        video.update(q.source, q.rgb)
    expected, totals = video.summary(), report.totals()
    assert totals["frames"] == expected["frames"] == clip.frames
    assert totals["psnr"] == pytest.approx(expected["psnr"], rel=1e-9)
    assert totals["de2000"] == pytest.approx(expected["de2000"], abs=1e-3)
    assert totals["flicker"] == pytest.approx(expected["flicker"], rel=1e-9)
    assert totals["static_share"] == pytest.approx(expected["static_frac"], rel=1e-9)
    for i, (q, frame) in enumerate(zip(qframes, report.frames)):
        assert frame["psnr"] == pytest.approx(metrics.psnr(q.source, q.rgb), rel=1e-9)
        assert frame["de2000"] == pytest.approx(metrics.mean_delta_e2000(q.source, q.rgb, 10**6), abs=1e-3)
        if i:
            value, n = metrics.static_flicker(qframes[i - 1].source, q.source, qframes[i - 1].rgb, q.rgb)
            assert frame["static"] == n and (frame["flicker"] is None) == (n == 0)
            if n:
                assert frame["flicker"] == pytest.approx(value, rel=1e-9)


def test_a_sampled_report_is_close_to_the_full_figures(metrics, make_clip):
    clip = make_clip("big.mp4", frames=6, size=(320, 240))  # 76800 pixels: 8192 are sampled
    qframes = _quantized(clip.path, n_colors=16)
    report, video = QualityReport(), metrics.VideoMetrics(de_max_pixels=10**6)
    for q in qframes:
        report.write(q)
        video.update(q.source, q.rgb)
    expected, totals = video.summary(), report.totals()
    assert report.as_dict()["sampling"]["pixels"] == 8192
    assert totals["psnr"] == pytest.approx(expected["psnr"], abs=0.3)
    assert totals["de2000"] == pytest.approx(expected["de2000"], rel=0.05)
    assert totals["flicker"] == pytest.approx(expected["flicker"], abs=0.05 + 0.1 * expected["flicker"])


def _frames(palettes, events=None):
    """QuantizedFrames over ``palettes`` (one per frame), with ``event`` where the quantizer tells it."""
    out = []
    for i, colors in enumerate(palettes):
        palette = Palette(np.asarray(colors, np.uint8))
        indices = (np.arange(12)[:, None] // 3 % len(colors)).repeat(10, axis=1).astype(np.uint8)
        source = np.clip(palette.colors[indices].astype(int) + 3, 0, 255).astype(np.uint8)
        q = QuantizedFrame(palette.colors[indices], indices, palette, i / 10, source)
        if events is not None:
            q = dataclasses.replace(q, event=events[i])
        out.append(q)
    return out


def test_palette_changes_refits_and_scene_cuts():
    a, b, c = [[0, 0, 0], [255, 255, 255]], [[0, 0, 0], [250, 250, 250]], [[255, 0, 0], [0, 0, 255]]
    report = QualityReport()
    for q in _frames([a, a, b, b, c, c]):  # no `event`: every palette change counts as a refit
        report.write(q)
    assert [f["event"] for f in report.frames] == ["fresh", "", "refit", "", "refit", ""]
    assert [p["frame"] for p in report.palettes] == [0, 2, 4] and report.palettes[2]["colors"] == ["#ff0000",
                                                                                                   "#0000ff"]
    told = QualityReport()
    for q in _frames([a, a, b, b, c, c], events=["fresh", "", "refit", "", "fresh", ""]):
        told.write(q)
    totals = told.totals()
    assert (totals["refits"], totals["scene_cuts"], totals["palette_changes"]) == (1, 1, 2)
    timeline = told.timeline()
    assert timeline.shape == (2, 6, 3)
    np.testing.assert_array_equal(timeline[:, 4], c)
    np.testing.assert_array_equal(timeline[:, 2], b)
    assert "1 refit, 1 scene cut" in told.summary()


def test_transcode_writes_a_json_report(tmp_path, make_clip):
    clip = make_clip("clip.mp4", frames=24)
    out, report = tmp_path / "out.gif", tmp_path / "report.json"
    assert main(["transcode", str(clip.path), str(out), "-k", "8", "--report", str(report), "-q"]) == 0
    data = json.loads(report.read_text())
    assert set(data) == {"summary", "totals", "sampling", "palettes", "frames"}
    assert len(data["frames"]) == clip.frames and data["totals"]["frames"] == clip.frames
    assert {"psnr", "de2000", "flicker", "static", "event", "palette", "time"} <= set(data["frames"][1])
    assert data["palettes"][0]["frame"] == 0 and len(data["palettes"][0]["colors"]) == 8
    assert data["totals"]["refits"] + data["totals"]["scene_cuts"] == data["totals"]["palette_changes"]
    assert 5 < data["totals"]["psnr"] < 60 and data["summary"].startswith(f"{clip.frames} frames: PSNR")
    assert not list(tmp_path.glob(".*"))


def test_transcode_and_image_draw_a_png_report(tmp_path, make_clip):
    pytest.importorskip("matplotlib")
    clip = make_clip("clip.mp4", frames=12)
    picture = tmp_path / "report.png"
    assert main(["transcode", str(clip.path), str(tmp_path / "out.webp"), "-k", "8", "--report", str(picture),
                 "-q"]) == 0
    image = cv2.imread(str(picture))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 500
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 8  # the palette's colours, curves, text
    still = tmp_path / "still.json"
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), cv2.cvtColor(clip.expected(3), cv2.COLOR_RGB2BGR))
    assert main(["image", str(frame), str(tmp_path / "small.png"), "-k", "4", "--report", str(still)]) == 0
    data = json.loads(still.read_text())
    assert data["totals"]["frames"] == 1 and data["frames"][0]["flicker"] is None and data["totals"]["psnr"] > 10


@pytest.mark.parametrize(("suffix", "opening"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_a_report_is_drawn_as_svg_or_pdf(tmp_path, make_clip, suffix, opening):
    """Vector pictures for a page: the report took .png only."""
    pytest.importorskip("matplotlib")
    clip = make_clip("clip.mp4", frames=6)
    picture = tmp_path / f"report{suffix}"
    assert main(["transcode", str(clip.path), str(tmp_path / "out.gif"), "--report", str(picture), "-q"]) == 0
    data = picture.read_bytes()
    assert data.startswith(opening) and len(data) > 10_000  # the timeline, two plots, their text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.gif", picture.name]


def test_report_errors_are_one_line_and_come_before_any_work(tmp_path, make_clip, capsys, monkeypatch):
    clip = make_clip("clip.mp4", frames=4)
    out = tmp_path / "out.gif"
    assert main(["transcode", str(clip.path), str(out), "--report", str(tmp_path / "r.txt")]) == 2
    assert "a report is .json (the figures) or .png .svg .pdf (the picture)" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["transcode", str(clip.path), str(out), "--report", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs matplotlib: pip install 'livequant[report]'" in err
    (tmp_path / "r.json").write_text("{}")
    assert main(["transcode", str(clip.path), str(out), "--report", str(tmp_path / "r.json")]) == 1
    assert "r.json' exists; use -y to overwrite" in capsys.readouterr().err
    assert not out.exists()


def test_a_report_that_appears_meanwhile_is_kept_without_overwrite(tmp_path, make_clip):
    report = QualityReport()
    for qframe in _quantized(make_clip("clip.mp4", frames=3).path, n_colors=4):
        report.write(qframe)
    path = tmp_path / "r.json"
    path.write_text("theirs")
    with pytest.raises(FileExistsError):
        report.save(path, overwrite=False)
    assert path.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4", "r.json"]
    report.save(path)
    assert json.loads(path.read_text())["frames"]
