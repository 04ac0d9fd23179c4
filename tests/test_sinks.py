"""Sinks write real files that the tests decode again with PyAV and OpenCV."""

import gc
import re
import shutil
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import SURROUND_TONES, channel_tones, send_wm_delete, surround_clip
from corpus import write_cut_h264
from livequant import presets
from livequant.errors import SinkError
from livequant.quantizer import Quantizer
from livequant.sinks import AnimationWriter, GifWriter, ImageWriter, Preview, VideoWriter


def _indices(i, height=48, width=64, k=4):
    """A moving diagonal pattern of palette indices."""
    y, x = np.mgrid[:height, :width]
    return ((x // 8 + y // 8 + i) % k).astype(np.uint8)


def _decode(path, kind="video"):
    """``(frames as RGB arrays, times)`` of the first stream of ``kind``."""
    with av.open(str(path)) as container:
        frames = list(container.decode(**{kind: 0}))
    arrays = [f.to_ndarray(format="rgb24") for f in frames] if kind == "video" else frames
    return arrays, [f.time for f in frames]


def _audio_seconds(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return stream.codec_context.name, sum(f.samples for f in container.decode(stream)) / stream.rate


def _write(sink, make_qframe, n, fps=12.0, start=0.0, size=(48, 64)):
    for i in range(n):
        sink.write(make_qframe(_indices(i, *size), time=start + i / fps))


def _quits_within(preview, make_qframe, frames: int) -> bool:
    """Whether ``preview`` requests quit within ``frames`` more frames (it sees keys and window events as it draws)."""
    for _ in range(frames):
        _write(preview, make_qframe, 1)
        if preview.quit_requested:
            return True
    return False


# VideoWriter


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_video_round_trip(tmp_path, make_qframe, suffix):
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, 12) as sink:
        _write(sink, make_qframe, 12)
    frames, times = _decode(path)
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    np.testing.assert_allclose(times, np.arange(12) / 12, atol=2e-3)
    assert np.abs(frames[3].astype(int) - make_qframe(_indices(3)).rgb).mean() < 6
    assert not list(tmp_path.glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("name, codec, matrix, color_range", [
    ("tagged.mp4", None, 1, 1), ("tagged.webm", None, 1, 1), ("hevc.mp4", "libx265", 1, 1),  # limited range
    ("vp8.webm", "libvpx", 5, 1),  # VP8 cannot name its matrix and decoders take BT.601 (BT.470BG)
    ("mjpeg.mov", "mjpeg", 5, 2),  # JFIF: BT.601, full range (FFmpeg refused Motion JPEG in limited range)
])
def test_yuv_output_is_tagged_with_its_matrix_and_decodes_to_the_palette_colours(tmp_path, make_qframe, name,
                                                                                 codec, matrix, color_range):
    path = tmp_path / name
    colors = presets.get("pico8").colors  # saturated colours show a wrong matrix most
    qframe = make_qframe(np.repeat(np.repeat(np.arange(16).reshape(4, 4), 32, 0), 32, 1), colors=colors)
    with VideoWriter(path, 10, codec=codec) as sink:
        sink.write(qframe)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range) == (matrix, color_range)
        rgb = frame.to_ndarray(format="rgb24").astype(int)
    centres = (slice(8, None, 32), slice(8, None, 32))
    assert np.abs(rgb[centres] - qframe.rgb[centres]).max() <= 6  # a wrong matrix is 10-27 off


@pytest.mark.parametrize("name, tag", [("out.mp4", "avc1"), ("out.mov", "avc1"), ("hevc.mp4", "hvc1")])
def test_mp4_and_mov_put_their_index_first_and_tag_hevc_for_apple_players(tmp_path, make_qframe, name, tag):
    path = tmp_path / name
    with VideoWriter(path, 10, codec="libx265" if "hevc" in name else None) as sink:
        _write(sink, make_qframe, 3)
    data = path.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")  # "faststart": plays while it downloads, reads from a pipe
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.codec_tag == tag


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".webm"])
def test_lossless_keeps_every_pixel_at_odd_sizes(tmp_path, make_qframe, suffix):
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, 10, lossless=True) as sink:
        _write(sink, make_qframe, 3, size=(47, 65))
    frames, _ = _decode(path)
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[2], make_qframe(_indices(2, 47, 65)).rgb)


@pytest.mark.parametrize("crf", ["20", float("nan"), True])
def test_a_crf_that_is_not_a_number_is_named(tmp_path, crf):
    """'20' failed deep inside with "'<=' not supported"."""
    with pytest.raises(ValueError, match=r"^crf must be a number \(lower is better\), got "):
        VideoWriter(tmp_path / "out.mp4", 10, crf=crf)
    assert not list(tmp_path.iterdir())


def test_lossless_webm_keeps_every_pixel_of_a_clip_libvpx_failed_on(tmp_path):
    """With libvpx's default lag (frames held back for alt-ref frames), lossless VP9 failed at the end of this
    clip ("Invalid data found"), and nothing was written; 6 of 60 such clips failed."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    quantizer, qframes = Quantizer(16), []
    for i in range(12):
        frame = np.roll(base, i * 3, axis=1)
        frame[:8, :8] = i * 20
        qframes.append(quantizer.process(frame, i / 10))
    with VideoWriter(tmp_path / "out.webm", 10, lossless=True) as sink:
        for qframe in qframes:
            sink.write(qframe)
    frames, _ = _decode(tmp_path / "out.webm")
    assert len(frames) == 12 and all(np.array_equal(a, q.rgb) for a, q in zip(frames, qframes, strict=True))


@pytest.mark.parametrize(("name", "codec"), [("raw.avi", "rawvideo"), ("raw.mkv", "rawvideo"), ("raw.mov", "rawvideo"),
                                             ("png.mov", "png"), ("rle.mov", "qtrle"), ("ut.avi", "utvideo"),
                                             ("huff.avi", "huffyuv"), ("magic.avi", "magicyuv")])
@pytest.mark.parametrize("lossless", [False, True])
def test_lossless_only_encoders_keep_every_pixel(tmp_path, make_qframe, name, codec, lossless):
    """They were given 4:2:0 YUV where they take it (raw video 2-5 levels off, Ut Video and MagicYUV too),
    RGB24 raw video in AVI came back with red and blue swapped, and ``lossless`` refused them."""
    path = tmp_path / name
    with VideoWriter(path, 10, codec=codec, lossless=lossless) as sink:
        _write(sink, make_qframe, 3, size=(47, 65))
    frames, _ = _decode(path)
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[2], make_qframe(_indices(2, 47, 65)).rgb)


def test_writing_beside_a_damaged_stream_decoding_leaves_pyavs_logging_off(tmp_path, make_qframe, capfd):
    """Opening an encoder set PyAV's log level for FFmpeg's reason, for every writer: setting it back to None
    raced with FFmpeg's decoding threads logging (a traceback from PyAV's callback), and a level left set hung
    runs (a decoding thread logging waits for the GIL while the GIL's holder, freeing that decoder, waits for
    it). The level is set only to read why an encoder refused to open."""
    write_cut_h264(tmp_path / "cut.h264")
    av.logging.set_level(None)
    stop = threading.Event()

    def decode_damaged():
        while not stop.is_set():
            with av.open(str(tmp_path / "cut.h264")) as container:
                container.streams.video[0].thread_type = "AUTO"
                for _ in container.decode(video=0):
                    pass

    thread = threading.Thread(target=decode_damaged)
    thread.start()
    try:
        for i in range(20):
            with VideoWriter(tmp_path / f"{i}.mp4", 12) as sink:
                _write(sink, make_qframe, 1)
                assert av.logging.get_level() is None
    finally:
        stop.set()
        thread.join()
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "out.gif", "out.apng", "out.webp"])
def test_a_frame_of_another_size_is_refused_and_nothing_is_left(tmp_path, make_qframe, name):
    """A video or animation holds one frame size: before, video rescaled the frame (off the palette, even
    lossless) and the GIF drew it outside its screen."""
    path = tmp_path / name
    sink = VideoWriter(path, 12) if path.suffix in (".mp4", ".mkv") else (
        GifWriter(path) if path.suffix == ".gif" else AnimationWriter(path))
    with pytest.raises(SinkError, match=r"frame 3 is 20x40 but '.*' holds 33x23 frames; give every frame"):
        with sink:
            for i, shape in enumerate([(23, 33), (23, 33), (40, 20)]):
                sink.write(make_qframe(np.zeros(shape, np.uint8), time=i / 12))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the GIF's open file says so
@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out.apng", "out.png"])
def test_a_sink_dropped_without_closing_leaves_no_partial_file(tmp_path, make_qframe, name):
    path = tmp_path / name
    sink = VideoWriter(path, 12) if path.suffix == ".mp4" else (
        GifWriter(path) if path.suffix == ".gif" else AnimationWriter(path) if path.suffix == ".apng" else
        ImageWriter(path))
    sink.write(make_qframe(np.zeros((8, 8), np.uint8)))
    assert len(list(tmp_path.iterdir())) == 1  # the partial file
    del sink
    gc.collect()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.png", "out.apng"])
def test_pngs_say_their_pixels_are_square_or_nothing(tmp_path, make_qframe, name):
    """FFmpeg's PNG and APNG encoders write the stream's pixel aspect into pHYs: unset, 0:1."""
    from PIL import Image

    path = tmp_path / name
    with ImageWriter(path) if name == "out.png" else AnimationWriter(path) as sink:
        _write(sink, make_qframe, 1 if name == "out.png" else 2)
    with Image.open(path) as picture:
        assert picture.info.get("aspect", (1, 1)) == (1, 1)


def test_odd_sizes_are_padded_to_even_for_yuv420p(tmp_path, make_qframe):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 10) as sink:
        _write(sink, make_qframe, 2, size=(47, 65))
    frames, _ = _decode(path)
    assert frames[0].shape == (48, 66, 3)
    np.testing.assert_allclose(frames[0][-1].astype(int), frames[0][-2], atol=12)  # repeated last row


def test_variable_frame_rate_is_kept(tmp_path, make_qframe):
    times = [0.0, 0.05, 0.3, 0.35, 0.9]
    path = tmp_path / "vfr.mp4"
    with VideoWriter(path, 10) as sink:
        for i, t in enumerate(times):
            sink.write(make_qframe(_indices(i), time=t))
    np.testing.assert_allclose(_decode(path)[1], times, atol=2e-3)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
@pytest.mark.parametrize(("times", "end", "duration"), [
    ([0.0, 0.05, 0.3, 0.35, 0.9], 1.4, 1.4),
    ([0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.02, 1.5], None, 1.98),  # the last frame as long as the one before
    ([i / 10 for i in range(30)], 3.0, 3.0),
])
def test_a_variable_rate_video_lasts_until_its_last_frame_ends(tmp_path, make_qframe, suffix, times, end, duration):
    """The MP4 muxer ends a stream at its last packet in decode order, which with B-frames is another frame."""
    path = tmp_path / f"vfr{suffix}"
    with VideoWriter(path, 10) as sink:
        for i, t in enumerate(times):
            sink.write(make_qframe(_indices(i), time=t))
        if end is not None:
            sink.end_at(end)
    with av.open(str(path)) as container:
        assert container.duration / 1e6 == pytest.approx(duration, abs=2e-3)
    np.testing.assert_allclose(_decode(path)[1], times, atol=2e-3)


@pytest.mark.parametrize(("suffix", "fps"), [(".mp4", Fraction(24000, 1001)), (".mov", Fraction(60000, 1001)),
                                            (".mp4", Fraction(25))])
def test_a_constant_rate_keeps_every_frame_the_same_length(tmp_path, make_qframe, suffix, fps):
    """At 1/90000 s, 23.976 fps frames lasted 3753 and 3754 ticks in turn, and with B-frames the last packet
    in decode order lasted two frames (FFmpeg then read 23.49 fps): editors may call either variable."""
    path = tmp_path / f"cfr{suffix}"
    with VideoWriter(path, float(fps)) as sink:
        for i in range(24):
            sink.write(make_qframe(np.roll(_indices(0, 96, 128), i, axis=1), time=float(i / fps)))  # a pan
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        assert any(p.pts != p.dts for p in packets)  # B-frames
        shown = sorted(p.pts for p in packets)
        steps = {b - a for a, b in zip(shown, shown[1:])} | {p.duration for p in packets}
        assert len(steps) == 1 and steps.pop() * stream.time_base == 1 / fps
        assert stream.average_rate == fps and stream.frames == 24


def test_first_frame_time_becomes_zero(tmp_path, make_qframe):
    path = tmp_path / "late.mkv"
    with VideoWriter(path, 12) as sink:
        _write(sink, make_qframe, 3, start=5.0)
    np.testing.assert_allclose(_decode(path)[1], [0, 1 / 12, 2 / 12], atol=2e-3)


@pytest.mark.parametrize(("writer", "suffix", "shown", "fate"), [
    (VideoWriter, ".mkv", 4, "it is shown just after that one"),
    (GifWriter, ".gif", 3, "it is left out"),
])
def test_a_frame_timed_before_the_one_written_last_is_told_of_once(tmp_path, make_qframe, caplog, writer, suffix,
                                                                     shown, fate):
    path = tmp_path / ("late" + suffix)
    with caplog.at_level("WARNING", logger="livequant"), writer(path, fps=10) as sink:
        for i, t in enumerate([0.0, 0.2, 0.1, 0.3]):  # were moved or dropped without a word
            sink.write(make_qframe(_indices(i), time=t))
    said = [r.getMessage() for r in caplog.records if "came after" in r.getMessage()]
    assert said == [f"'{path}': a frame timed 0.100 s came after one timed 0.200 s; {fate} (said once a file)"]
    assert len(_decode(path)[0]) == shown


def test_audio_is_copied_and_cut_to_the_video(tmp_path, make_qframe, clip):
    path = tmp_path / "with_audio.mp4"
    with VideoWriter(path, 12, audio_from=clip.path) as sink:
        _write(sink, make_qframe, 12)  # 1 s of video from a clip with 2 s of sound
    codec, seconds = _audio_seconds(path)
    assert codec == "aac" and 0.9 < seconds < 1.1
    assert len(_decode(path)[0]) == 12


def _clicks(path: Path, seconds: float = 1.0, codec: str = "aac") -> None:
    """A file of black frames and 48 kHz stereo sound (AAC by default, FFmpeg's encoder: a priming packet ending
    at 0) with a 10 ms click at 0 s and at 0.5 s."""
    with av.open(str(path), "w") as out:
        video, sound = out.add_stream("libx264", rate=30), out.add_stream(codec, rate=48000)
        video.width = video.height = 64
        video.pix_fmt, sound.layout = "yuv420p", "stereo"
        for i in range(round(30 * seconds)):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        signal = np.zeros((2, round(48000 * seconds)), np.float32)
        signal[:, :480] = signal[:, 24000:24480] = 0.9
        step = sound.codec_context.frame_size or 1024
        for start in range(0, signal.shape[1], step):
            part = signal[:, start:start + step]
            frame = (av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="fltp", layout="stereo")
                     if sound.format.name == "fltp" else
                     av.AudioFrame.from_ndarray(np.round(part.T.reshape(1, -1) * 32767).astype(np.int16),
                                                format="s16", layout="stereo"))
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))


def _samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])


@pytest.mark.parametrize("start", [0.0, 0.5])
def test_copied_sound_keeps_the_packet_its_first_one_decodes_from(tmp_path, make_qframe, start):
    source, path = tmp_path / "clicks.mp4", tmp_path / "out.mp4"
    _clicks(source)
    with VideoWriter(path, 30, audio_from=source) as sink:
        _write(sink, make_qframe, 6, start=start)  # from 0 s (after AAC's priming packet) or 0.5 s (a cut)
    sound = _samples(path)
    assert np.abs(sound[:480]).max() == pytest.approx(np.abs(_samples(source)[:480]).max(), abs=0.05)  # the click


@pytest.mark.parametrize(("codec", "source_suffix", "suffix", "encoded", "padding"), [
    ("aac", ".mp4", ".webm", "opus", 0),  # WebM takes no AAC
    ("flac", ".mkv", ".mov", "aac", 1024),  # times in Matroska are whole milliseconds; AAC ends on a whole frame
])
def test_re_encoded_sound_starts_and_ends_at_the_samples_the_video_does(tmp_path, make_qframe, codec, source_suffix,
                                                                       suffix, encoded, padding):
    """Decoded sound went out in whole decoded frames: a cut at 0.5 s began 9 ms early with sound from before it
    and ran 24 ms past the video."""
    source, path = tmp_path / f"clicks{source_suffix}", tmp_path / f"out{suffix}"
    _clicks(source, codec=codec)
    with VideoWriter(path, 30, audio_from=source) as sink:
        _write(sink, make_qframe, 6, fps=30, start=0.5)  # 0.5 s to 0.7 s of the source: the click at 0.5 first
    assert _audio_seconds(path)[0] == encoded
    sound = _samples(path)
    assert 9600 <= len(sound) <= 9600 + padding + 48
    assert np.flatnonzero(np.abs(sound) > 0.45)[0] <= 48  # the click, within 1 ms of the start


@pytest.mark.parametrize(("codec", "source_suffix"), [("aac", ".mp4"), ("libopus", ".mkv")])  # copied; to AAC
def test_an_avi_says_its_frame_rate_and_count_and_keeps_its_sound_in_step(tmp_path, make_qframe, codec,
                                                                         source_suffix):
    """AVI counts frames, its header's rate one over the time base: at MPEG-4's 1/60000 a 30 fps file said 600 fps
    and 20 times its frames, most of them empty; and it has no edit list, so AAC's priming packet played first,
    the sound 21 ms late all through."""
    source, path = tmp_path / f"clicks{source_suffix}", tmp_path / "out.avi"
    _clicks(source, codec=codec)
    with VideoWriter(path, 30, audio_from=source, codec="mpeg4") as sink:
        _write(sink, make_qframe, 30, fps=30)
    with av.open(str(path)) as written:
        video = written.streams.video[0]
        assert (video.average_rate, video.frames) == (30, 30)
        assert [round(frame.time * 30, 3) for frame in written.decode(video=0)] == list(range(30))
        assert written.streams.audio[0].codec_context.name == "aac"
    sound = _samples(path)
    assert abs(np.flatnonzero(np.abs(sound[12000:]) > 0.45)[0] + 12000 - 24000) <= 48  # the click at 0.5 s, to 1 ms


@pytest.mark.parametrize("codec", ["ac3", "aac"])
def test_mpeg_ts_carries_the_sound_as_it_is(tmp_path, make_qframe, codec):
    """PyAV lists only MPEG-2's own codecs as what MPEG-TS holds, so AC-3, AAC and MP3 were re-encoded to AAC."""
    source, path = tmp_path / "clicks.mkv", tmp_path / "out.ts"
    _clicks(source, codec=codec)
    with VideoWriter(path, 30, audio_from=source, codec="libx264") as sink:
        _write(sink, make_qframe, 15, fps=30)
    with av.open(str(source)) as original, av.open(str(path)) as written:
        kept = [bytes(p) for p in original.demux(audio=0) if p.size][:8]
        copied = [bytes(p) for p in written.demux(audio=0) if p.size][:8]
        assert written.streams.audio[0].codec_context.codec.canonical_name == codec
    assert all(old in new for old, new in zip(kept, copied))  # the same frames (an ADTS header before AAC's)
    assert 0.45 <= _audio_seconds(path)[1] <= 0.6


def test_audio_follows_a_late_start(tmp_path, make_qframe, clip):
    path = tmp_path / "late_audio.mkv"
    with VideoWriter(path, 12, audio_from=clip.path) as sink:
        _write(sink, make_qframe, 6, start=1.5)  # frames at 1.5 .. 1.92 s of the source
    _, seconds = _audio_seconds(path)
    assert 0.4 < seconds < 0.6


def test_audio_is_reencoded_when_the_container_refuses_the_codec(tmp_path, make_qframe, clip):
    path = tmp_path / "with_audio.webm"
    with VideoWriter(path, 12, audio_from=clip.path) as sink:
        _write(sink, make_qframe, 24)
    codec, seconds = _audio_seconds(path)
    assert codec == "opus" and 1.8 < seconds < 2.2


@pytest.mark.parametrize(("codec", "layout", "suffix", "encoded"), [
    ("pcm_s16le", "5.1", ".mp4", "aac"),  # Matroska's PCM names no layout: read as 5.1
    ("pcm_s16le", "5.1", ".webm", "opus"),
    ("flac", "5.1", ".mov", "aac"),
    ("ac3", "5.1(side)", ".webm", "opus"),  # Opus knows the side surrounds as back ones
])
def test_surround_audio_keeps_every_channel_when_reencoded(tmp_path, make_qframe, codec, layout, suffix, encoded):
    """Audio the output cannot copy was mixed down to stereo."""
    source = surround_clip(tmp_path / "surround.mkv", codec, layout)
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, 10, audio_from=source) as sink:
        _write(sink, make_qframe, 10, fps=10)
    assert channel_tones(path) == (encoded, "5.1", SURROUND_TONES)


def test_audio_whose_channels_the_encoder_cannot_keep_is_refused(tmp_path):
    """Opus has no layout for 2.1 (front left, front right, LFE): before, the LFE was mixed away."""
    source = surround_clip(tmp_path / "in.mkv", "flac", "2.1")
    message = (r"a \.webm file cannot keep the 3-channel \(2\.1\) audio of '.*in\.mkv': its libopus encoder takes "
               r"no such layout, and livequant does not mix channels down; use --no-audio, or write \.mkv")
    with pytest.raises(SinkError, match=message):
        VideoWriter(tmp_path / "out.webm", 10, audio_from=source)
    assert [p.name for p in tmp_path.iterdir()] == ["in.mkv"]


def test_audio_from_a_file_without_sound_writes_video_only(tmp_path, make_qframe, make_clip):
    silent = make_clip("silent.mp4", frames=2).path
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 12, audio_from=silent) as sink:
        _write(sink, make_qframe, 2)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video"]


@pytest.mark.parametrize("frames", [1, 12])
def test_libx265_is_quiet(tmp_path, make_qframe, capfd, frames):
    """x265 printed some 20 info lines to stderr (its own printf, past FFmpeg's log level) for every encode;
    a lone frame came with an unset decode time that the MP4 muxer could refuse."""
    try:
        av.Codec("libx265", "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip("PyAV here has no libx265")
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 12, codec="libx265") as sink:
        _write(sink, make_qframe, frames)
    assert "x265 [" not in capfd.readouterr().err
    assert len(_decode(path)[0]) == frames


def test_keyboard_interrupt_leaves_a_playable_file(tmp_path, make_qframe, clip):
    path = tmp_path / "interrupted.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(path, 12, audio_from=clip.path) as sink:
        _write(sink, make_qframe, 5)
        raise KeyboardInterrupt
    assert len(_decode(path)[0]) == 5
    assert _audio_seconds(path)[1] < 0.6
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_an_interrupted_output_never_replaces_a_file_but_goes_beside_it(tmp_path, make_qframe, suffix):
    """With -y (overwrite) a Ctrl-C replaced the user's file with the frames written so far; a finished output
    replaces it, as asked."""
    path = tmp_path / f"mine{suffix}"
    path.write_bytes(b"mine")

    def open_sink(path, overwrite):
        return GifWriter(path, overwrite=overwrite) if suffix == ".gif" else VideoWriter(path, 12, overwrite=overwrite)

    for n, frames in ((1, 5), (2, 3)):
        with pytest.raises(KeyboardInterrupt), open_sink(path, overwrite=True) as sink:
            _write(sink, make_qframe, frames)
            raise KeyboardInterrupt
        beside = tmp_path / f"mine.interrupted{'' if n == 1 else '-2'}{suffix}"
        assert (sink.path, sink.kept) == (beside, path) and len(_decode(beside)[0]) == frames
        assert path.read_bytes() == b"mine"
    with open_sink(path, overwrite=True) as sink:
        _write(sink, make_qframe, 4)
    assert len(_decode(path)[0]) == 4 and sink.kept is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, f"mine.interrupted{suffix}", f"mine.interrupted-2{suffix}"])


def test_other_exceptions_leave_no_file(tmp_path, make_qframe):
    path = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError), VideoWriter(path, 12) as sink:
        _write(sink, make_qframe, 5)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, make_qframe):
    path = tmp_path / "taken.mp4"
    path.write_bytes(b"keep me")
    for make in (lambda: VideoWriter(path, 12), lambda: GifWriter(path), lambda: ImageWriter(path.with_suffix(".png"))):
        path.with_suffix(".png").write_bytes(b"keep me")
        with pytest.raises(SinkError, match=r"output '.*taken\.(mp4|png)' exists; use -y to overwrite"):
            make()
    assert path.read_bytes() == b"keep me"
    with VideoWriter(path, 12, overwrite=True) as sink:
        _write(sink, make_qframe, 1)
    assert len(_decode(path)[0]) == 1


@pytest.mark.parametrize(("name", "message"), [
    *[(name, "appeared while this was being written (another program made it) and is kept; write another name, or "
             "use -y to overwrite") for name in ("late.mp4", "late.gif", "late.png")],
    ("late-%02d.png", "exists; use -y to overwrite"),  # checked before each picture, and linked into place
])
def test_an_output_that_appears_while_writing_is_kept(tmp_path, make_qframe, name, message):
    """Another program writes the output's name while this writer works: without overwrite it stays."""
    path = tmp_path / name
    target = tmp_path / (name % 2 if "%" in name else name)  # a sequence's second picture
    writer = {".mp4": lambda: VideoWriter(path, 12), ".gif": lambda: GifWriter(path)}.get(
        path.suffix, lambda: ImageWriter(path))
    with pytest.raises(SinkError, match=re.escape(f"output '{target}' {message}")):
        with writer() as sink:
            sink.write(make_qframe(np.zeros((8, 8), np.uint8)))
            target.write_bytes(b"theirs")
            sink.write(make_qframe(np.ones((8, 8), np.uint8), time=0.1)) if "%" in name else None
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no partial file, no first picture


def test_a_link_to_a_missing_file_is_an_existing_output(tmp_path, make_qframe):
    """Checked at the start, as any output that exists (it was found only at the end, as one that appeared)."""
    path = tmp_path / "link.gif"
    path.symlink_to(tmp_path / "missing" / "x.gif")
    with pytest.raises(SinkError, match=re.escape(f"output '{path}' exists; use -y to overwrite")):
        GifWriter(path)
    with GifWriter(path, overwrite=True) as sink:  # the link is replaced, as os.replace does
        sink.write(make_qframe(np.zeros((8, 8), np.uint8)))
    assert not path.is_symlink() and len(_decode(path)[0]) == 1


def test_with_overwrite_an_output_that_appears_while_writing_is_replaced(tmp_path, make_qframe):
    path = tmp_path / "late.gif"
    with GifWriter(path, overwrite=True) as sink:
        sink.write(make_qframe(np.zeros((8, 8), np.uint8)))
        path.write_bytes(b"theirs")
    assert len(_decode(path)[0]) == 1


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(SinkError, match=r"directory '.*nowhere' does not exist"):
        VideoWriter(tmp_path / "nowhere" / "out.mp4", 12)


def test_no_frames_is_an_error_and_leaves_no_file(tmp_path):
    with pytest.raises(SinkError, match="no frames arrived"), VideoWriter(tmp_path / "empty.mp4", 12):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "options", "error"),
    [
        ("out.avi", {}, "suffix"),
        ("out.mp4", {"codec": "nope"}, "codec 'nope'"),
        ("out.mp4", {"fps": 0}, "fps"),
        ("out.mp4", {"pix_fmt": "nope"}, "pixel format: 'nope'"),
    ],
)
def test_bad_video_arguments(tmp_path, path, options, error):
    with pytest.raises(ValueError, match=error):
        VideoWriter(tmp_path / path, **{"fps": 12, **options})


# GifWriter


def test_gif_keeps_palette_colours_and_frame_times(tmp_path, make_qframe):
    path = tmp_path / "out.gif"
    times = [0.0, 0.1, 0.25, 0.3]
    with GifWriter(path) as sink:
        for i, t in enumerate(times):
            sink.write(make_qframe(_indices(i), time=t))
    frames, decoded_times = _decode(path)
    assert len(frames) == 4
    np.testing.assert_allclose(decoded_times, times, atol=0.011)
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, make_qframe(_indices(i)).rgb)
    assert b"NETSCAPE2.0" in path.read_bytes()  # loops forever


def test_gif_follows_a_changing_palette_with_256_colours(tmp_path, make_qframe, rng):
    path = tmp_path / "big.gif"
    palettes = [rng.integers(0, 256, (256, 3), dtype=np.uint8), rng.integers(0, 256, (7, 3), dtype=np.uint8)]
    qframes = [make_qframe(rng.integers(0, len(c), (30, 41)), colors=c, time=i / 10) for i, c in enumerate(palettes)]
    with GifWriter(path, loop=-1) as sink:
        for q in qframes:
            sink.write(q)
    frames, _ = _decode(path)
    for q, frame in zip(qframes, frames):
        np.testing.assert_array_equal(frame, q.rgb)
    assert b"NETSCAPE2.0" not in path.read_bytes()  # plays once


# ImageWriter


@pytest.mark.parametrize("k, depth", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
def test_png_holds_the_palette_as_it_is_at_the_fewest_bits_a_pixel(tmp_path, make_qframe, k, depth):
    """One PLTE entry per palette colour (FFmpeg's encoder wrote 256 entries at 8 bits whatever K: a pixel-art
    tool imported 252 black colours with a Game Boy picture), each pixel in 1, 2, 4 or 8 bits; widths that
    leave part of a byte, and the picture exactly, read back by OpenCV and by FFmpeg."""
    path = tmp_path / "still.png"
    colors = np.random.default_rng(k).integers(0, 256, (k, 3)).astype(np.uint8)
    qframe = make_qframe(_indices(0, 7, 9, k=k), colors)
    with ImageWriter(path) as sink:
        sink.write(make_qframe(_indices(1, 7, 9, k=k), colors))
        sink.write(qframe)  # a plain path keeps the last frame
    data = path.read_bytes()
    assert data[24:26] == bytes([depth, 3])  # IHDR: bit depth, colour type 3 (palette)
    plte = data.find(b"PLTE")
    assert int.from_bytes(data[plte - 4:plte], "big") == 3 * k
    np.testing.assert_array_equal(data[plte + 4:plte + 4 + 3 * k], colors.tobytes())
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), qframe.rgb)
    np.testing.assert_array_equal(_decode(path)[0][0], qframe.rgb)


@pytest.mark.parametrize("pattern", ["seq_{:03d}.png", "seq_%03d.jpg"])
def test_image_sequence_from_a_pattern(tmp_path, make_qframe, pattern):
    with ImageWriter(tmp_path / pattern) as sink:
        _write(sink, make_qframe, 3)
    suffix = pattern[-4:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"seq_00{i}{suffix}" for i in (1, 2, 3)]
    assert cv2.imread(str(tmp_path / f"seq_003{suffix}")).shape == (48, 64, 3)


def test_image_writer_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="'.xyz'"):
        ImageWriter(tmp_path / "out.xyz")


# Preview


def test_preview_without_display_says_what_to_do(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SinkError, match=r"no display \(\$DISPLAY is not set\); use `livequant transcode`"):
        Preview()


def test_preview_on_a_display_nobody_answers_says_what_to_do():
    """A socket file left by an X server that is gone, and a forwarded display whose SSH session ended (its port
    closed): Qt aborted the process (exit 134); now one line and exit 1. Run as users do, in a process of its own,
    since an abort would take the test run with it."""
    import os
    import socket

    def preview(display):
        return subprocess.run([sys.executable, "-m", "livequant", "preview", "test"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "DISPLAY": display})

    folder = Path("/tmp/.X11-unix")
    folder.mkdir(mode=0o1777, exist_ok=True)
    number = next(n for n in range(700, 800) if not (folder / f"X{n}").exists())
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(folder / f"X{number}"))  # bound, never listening: a connection is refused
    try:
        done = preview(f":{number}")
    finally:
        stale.close()
        (folder / f"X{number}").unlink()
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"livequant: error: cannot open a preview window: no X server answers on $DISPLAY=:{number}; use "
        "`livequant transcode` to write a file instead"]
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if port > 6000:
        done = preview(f"127.0.0.1:{port - 6000}")
        assert done.returncode == 1 and "no X server answers on $DISPLAY=127.0.0.1:" in done.stderr


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_preview_on_a_display_that_refuses_us_says_what_to_do(tmp_path):
    """An X server that lets in only those with a cookie of its own (``-auth``), which this process lacks (as after
    sudo: $DISPLAY kept, $XAUTHORITY not): Qt aborted the process (exit 134, five lines); now one line, exit 1."""
    import os
    import secrets
    import struct

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    cookies = tmp_path / "cookies"  # an Xauthority file of one entry: any display, MIT-MAGIC-COOKIE-1
    cookies.write_bytes(struct.pack(">H", 0xFFFF) + field(b"") + field(b"") + field(b"MIT-MAGIC-COOKIE-1")
                        + field(secrets.token_bytes(16)))
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-auth", str(cookies), "-nolisten", "tcp"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as r:
        display = f":{r.readline().strip()}"
    try:
        done = subprocess.run([sys.executable, "-m", "livequant", "preview", "test"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "DISPLAY": display, "XAUTHORITY": str(tmp_path / "none")})
    finally:
        server.terminate()
        server.wait()
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"livequant: error: cannot open a preview window: the X server on $DISPLAY={display} refused the connection "
        "(no authorization it takes: check $XAUTHORITY, as after sudo or su; or it has too many clients); use "
        "`livequant transcode` to write a file instead"]


@pytest.mark.gui
def test_preview_window_appears_and_keys_act(xdisplay, make_qframe, tmp_path, monkeypatch, capsys):
    from livequant.cli import PreviewKeys
    from livequant.quantizer import Quantizer

    monkeypatch.chdir(tmp_path)
    quantizer = Quantizer(4)
    keys = PreviewKeys(quantizer)
    with Preview(title="lq-test-preview", on_key=keys, status=keys.status) as preview:
        _write(preview, make_qframe, 3)
        found = subprocess.run(["xdotool", "search", "--name", "lq-test-preview"], capture_output=True, text=True)
        assert found.stdout.split(), "the preview window is not on the display"
        for key, check in [
            ("+", lambda: quantizer.n_colors == 8),
            ("-", lambda: quantizer.n_colors == 4),
            ("d", lambda: quantizer.dither != "none"),
            ("p", lambda: quantizer.palette.name not in ("", "adaptive")),
            ("s", lambda: (tmp_path / "livequant-snapshot-1.png").is_file()),
        ]:
            preview.handle_key(ord(key))
            assert check(), key
        assert "livequant-snapshot-1.png" in capsys.readouterr().out
        assert not preview.quit_requested
        subprocess.run(["xdotool", "key", "--window", found.stdout.split()[0], "q"], check=True)
        assert _quits_within(preview, make_qframe, 20)
    quantizer.close()


def test_preview_keys_go_on_from_the_preset_in_force_and_halve_down_to_one_colour():
    from livequant import presets
    from livequant.cli import PreviewKeys
    from livequant.quantizer import Quantizer

    with Quantizer(palette="gameboy") as quantizer:
        PreviewKeys(quantizer, presets.get("gameboy"))(ord("p"))
        names = presets.names()
        assert quantizer.palette.name == names[(names.index("gameboy") + 1) % len(names)]
    with Quantizer(1) as quantizer:
        PreviewKeys(quantizer)(ord("-"))
        assert quantizer.n_colors == 1


@pytest.mark.parametrize(("preset", "key", "colors"), [("gameboy", "+", 8), ("pico8", "-", 8), ("cga1", "=", 8)])
def test_plus_and_minus_under_a_preset_go_to_adaptive_palettes_from_its_size(make_qframe, preset, key, colors):
    from livequant import presets
    from livequant.cli import PreviewKeys
    from livequant.quantizer import Quantizer

    frame = make_qframe(np.arange(48 * 64).reshape(48, 64) % 256, colors=np.random.default_rng(0).integers(
        0, 256, (256, 3), dtype=np.uint8)).rgb
    with Quantizer(64, palette=preset) as quantizer:  # as `--palette PRESET` (-k stays at its default)
        keys = PreviewKeys(quantizer, presets.get(preset))
        keys(ord(key))
        assert len(quantizer.process(frame).palette) == colors
        keys(ord("p"))  # from adaptive, the first preset
        assert quantizer.palette.name == presets.names()[0]
    with Quantizer(64) as quantizer:  # a preset reached with p
        keys = PreviewKeys(quantizer)
        for _ in range(presets.names().index(preset) + 1):
            keys(ord("p"))
        assert quantizer.palette.name == preset
        keys(ord(key))
        assert len(quantizer.process(frame).palette) == colors


@pytest.mark.gui
def test_a_snapshot_that_cannot_be_written_is_a_warning_and_the_preview_goes_on(xdisplay, make_qframe, monkeypatch,
                                                                                caplog):
    monkeypatch.chdir("/sys")  # no new files here, even for root
    with Preview(title="lq-test-snapshot") as preview:
        _write(preview, make_qframe, 2)
        assert preview.snapshot() is None
        _write(preview, make_qframe, 2)
        assert not preview.quit_requested
    assert "cannot save the snapshot '/sys/livequant-snapshot-1.png': " in caplog.text


@pytest.mark.gui
def test_closing_the_window_requests_quit(xdisplay, make_qframe):
    with Preview(title="lq-test-close") as preview:
        _write(preview, make_qframe, 2)
        found = subprocess.run(["xdotool", "search", "--name", "lq-test-close"], capture_output=True, text=True)
        for window in found.stdout.split():
            send_wm_delete(int(window))
        assert _quits_within(preview, make_qframe, 20)


@pytest.mark.gui
def test_preview_starts_quietly(xdisplay):
    """OpenCV's Qt looks for fonts in a folder its wheel does not ship; the user sees none of its warnings."""
    show = ("import numpy as np; from livequant.frames import QuantizedFrame; from livequant.palette import Palette;"
            "from livequant.sinks import Preview; p = Palette([[0, 0, 0], [255, 255, 255]]);"
            "i = np.zeros((48, 64), np.uint8); w = Preview('lq-test-quiet');"
            "w.write(QuantizedFrame(p.colors[i], i, p)); w.close()")
    done = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", ".mp4"), ("mpeg2video", ".mpg"), ("mjpeg", ".avi")])
def test_quantizer_encoders_code_at_a_quantizer_that_crf_sets(tmp_path, codec, suffix):
    """MPEG-4 part 2, MPEG-2 and Motion JPEG have no CRF; FFmpeg's rate control alone gave them 200 kb/s. They code
    at quantizer 3 unless --crf sets another: a lower one is larger and closer to the quantized frames."""
    from conftest import write_clip
    from livequant.cli import main

    clip = write_clip(tmp_path / "in.mp4", size=(640, 360), frames=12).path
    exact = tmp_path / "exact.mkv"
    assert main(["transcode", str(clip), str(exact), "--lossless", "-k", "64", "-q"]) == 0
    with av.open(str(exact)) as container:
        reference = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    error, size = {}, {}
    for crf in ("2", None, "31"):
        out = tmp_path / f"{crf}{suffix}"
        assert main(["transcode", str(clip), str(out), "--codec", codec, "-k", "64", "-q",
                     *(["--crf", crf] if crf else [])]) == 0
        with av.open(str(out)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        error[crf] = np.mean([np.abs(a - b).mean() for a, b in zip(reference, frames, strict=True)])
        size[crf] = out.stat().st_size
    assert size["2"] > size[None] > size["31"]
    assert error["2"] < error[None] < error["31"] and error[None] < 2.5
