"""Video read over HTTP from a real local server: a file (FFmpeg seeks it with Range requests) and an endless live
MPEG-TS stream."""

from __future__ import annotations

import collections
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2  # isort: skip  # before av, or OpenCV windows hang (PyAV#978)
import av  # isort: skip
import numpy as np
import pytest

from conftest import SURROUND_TONES, channel_tones, clip_frame, surround_clip
from livequant.cli import main
from livequant.sources import VideoFile

LIVE_FPS = 25
LIVE_RATE = 48000
LIVE_TONE = 1000


class _Handler(BaseHTTPRequestHandler):
    """Serves the server's ``files`` (with Range requests, as web servers do) and ``/live.ts``, an endless
    MPEG-TS stream of the test clips' frames sent in real time (``/live-sound.ts``: with a `LIVE_TONE` Hz tone);
    counts the requests of each path in the server's ``requests``."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.server.requests[self.path] += 1
        if self.path in ("/live.ts", "/live-sound.ts"):
            self._live(sound=self.path == "/live-sound.ts")
            return
        data = self.server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        first = int(ranged[1]) if ranged else 0
        last = int(ranged[2]) if ranged and ranged[2] else len(data) - 1
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data[first : last + 1])

    def _live(self, sound: bool):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        start = time.monotonic()
        try:
            with av.open(self.wfile, "w", format="mpegts") as out:
                stream = out.add_stream("libx264", rate=LIVE_FPS, options={"tune": "zerolatency"})
                stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
                audio = out.add_stream("aac", rate=LIVE_RATE) if sound else None
                for i in range(LIVE_FPS * 60):
                    frame = av.VideoFrame.from_ndarray(clip_frame(i, 64, 48), format="rgb24")
                    frame.pts = i
                    for packet in stream.encode(frame):
                        out.mux(packet)
                    if audio is not None:  # the frame's 1/25 s of the tone
                        n = np.arange(i * LIVE_RATE // LIVE_FPS, (i + 1) * LIVE_RATE // LIVE_FPS)
                        tone = (0.2 * np.sin(2 * np.pi * LIVE_TONE * n / LIVE_RATE)).astype(np.float32)
                        piece = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                        piece.sample_rate, piece.pts = LIVE_RATE, int(n[0])
                        for packet in audio.encode(piece):
                            out.mux(packet)
                    self.wfile.flush()
                    time.sleep(max(0.0, start + (i + 1) / LIVE_FPS - time.monotonic()))
        except (OSError, ValueError, av.error.FFmpegError):
            pass  # the reader hung up

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files = {}
    httpd.requests = collections.Counter()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_a_video_over_http_quantizes_as_the_same_file_on_disk(server, clip, tmp_path):
    """MP4 keeps its index at the end: FFmpeg reads it with Range requests."""
    server.files["clip.mp4"] = clip.path.read_bytes()
    url = f"http://127.0.0.1:{server.server_port}/clip.mp4"
    assert main(["transcode", url, str(tmp_path / "remote.gif"), "-k", "8", "-q"]) == 0
    assert main(["transcode", str(clip.path), str(tmp_path / "local.gif"), "-k", "8", "-q"]) == 0
    with VideoFile(url) as video, VideoFile(f"http://127.0.0.1:{server.server_port}/live.ts") as live:
        assert not video.endless and live.endless  # the file says how long it lasts, the live stream not
    remote, local = _frames(tmp_path / "remote.gif"), _frames(tmp_path / "local.gif")
    assert len(remote) == clip.frames
    for a, b in zip(remote, local):
        np.testing.assert_array_equal(a, b)


def test_an_endless_live_stream_is_quantized_for_the_duration_asked(server, tmp_path):
    """Frames go out as they come (the palette track runs a few frames ahead, never to the stream's end)."""
    url = f"http://127.0.0.1:{server.server_port}/live.ts"
    started = time.monotonic()
    assert main(["transcode", url, str(tmp_path / "live.gif"), "-k", "8", "--duration", "1", "-q"]) == 0
    took = time.monotonic() - started
    frames = _frames(tmp_path / "live.gif")
    assert LIVE_FPS - 2 <= len(frames) <= LIVE_FPS + 1, len(frames)
    assert took < 20, took  # the stream lasts a minute
    errors = [np.abs(frames[0].astype(int) - clip_frame(i, 64, 48)).mean() for i in range(LIVE_FPS)]
    assert np.argmin(errors) == 0, errors  # from the stream's first picture on


def test_what_reads_a_live_stream_through_is_refused_without_a_duration(server, tmp_path, capsys):
    """A global GIF palette and `livequant palette` read the input to its end: on a live stream they read on for
    ever, and showed nothing."""
    url = f"http://127.0.0.1:{server.server_port}/live.ts"
    out = tmp_path / "live.gif"
    assert main(["transcode", url, str(out), "--gif-palette", "global"]) == 2
    assert capsys.readouterr().err == (f"livequant: error: --gif-palette global reads the input through before "
                                       f"writing, and '{url}' does not say how long it lasts (a live stream?); add "
                                       "--duration, or leave out --gif-palette global\n")
    assert main(["palette", url]) == 2
    assert "save a stretch of it first: `livequant transcode" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["transcode", url, str(out), "--gif-palette", "global", "--duration", "0.5", "-q"]) == 0
    assert len(_frames(out)) in range(LIVE_FPS // 2 - 1, LIVE_FPS // 2 + 2)


@pytest.mark.parametrize(("name", "message"), [
    ("page.mp4", "Invalid data found when processing input; what the server sent is not a video FFmpeg reads; check "
                 "that the URL leads to the video itself"),
    ("missing.mp4", "Server returned 404 Not Found; check the URL"),
])
def test_a_url_that_gives_no_video_says_why(server, tmp_path, capsys, name, message):
    server.files["page.mp4"] = b"<html><body>a web page</body></html>"
    url = f"http://127.0.0.1:{server.server_port}/{name}"
    assert main(["transcode", url, str(tmp_path / "out.gif")]) == 1
    assert capsys.readouterr().err == f"livequant: error: cannot open video '{url}': {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_picture_at_a_url_is_quantized_as_the_file_on_disk(server, clip, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), clip_frame(5, 96, 64))
    server.files["photo.png"] = photo.read_bytes()
    server.files["clip.mp4"] = clip.path.read_bytes()
    base = f"http://127.0.0.1:{server.server_port}"
    assert main(["image", f"{base}/photo.png", str(tmp_path / "remote.png"), "-k", "6", "-q"]) == 0
    assert main(["image", str(photo), str(tmp_path / "local.png"), "-k", "6", "-q"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "remote.png")), cv2.imread(str(tmp_path / "local.png")))
    assert main(["image", f"{base}/clip.mp4", str(tmp_path / "still.png")]) == 2
    assert capsys.readouterr().err == (f"livequant: error: '{base}/clip.mp4' is a video, and `livequant image` "
                                       f"quantizes one picture; use `livequant transcode '{base}/clip.mp4' "
                                       f"'{tmp_path / 'still.gif'}'`\n")
    assert not (tmp_path / "still.png").exists()
    # and its palette, as from the file on disk (a picture's URL was taken for a missing file)
    assert main(["palette", f"{base}/photo.png", "-k", "4"]) == 0
    remote = capsys.readouterr().out
    assert main(["palette", str(photo), "-k", "4"]) == 0
    assert remote == capsys.readouterr().out and len(remote.split()) == 4


def test_the_sound_of_a_url_comes_with_its_video(server, tmp_path):
    """Demuxed with the pictures, not read again over a second connection (a live stream would show other
    moments there); 5.1 PCM, which MP4 cannot hold, is re-encoded with every channel."""
    server.files["surround.mkv"] = surround_clip(tmp_path / "surround.mkv", "pcm_s16le", "5.1").read_bytes()
    url = f"http://127.0.0.1:{server.server_port}/surround.mkv"
    assert main(["transcode", url, str(tmp_path / "remote.mp4"), "-k", "8", "-q"]) == 0
    assert channel_tones(tmp_path / "remote.mp4") == ("aac", "5.1", SURROUND_TONES)
    with VideoFile(url, carry_audio=True) as video, VideoFile(url) as silent:
        assert video.audio.stream.layout.nb_channels == 6 and silent.audio is None
        assert len(list(video)) == 10 and video.audio.finished
        assert sum(packet.size for packet in video.audio.packets()) == 48000 * 6 * 2  # all of it, and no more


def test_a_live_streams_sound_comes_from_the_one_connection(server, tmp_path):
    """It was read over a second connection, which a live stream answers with other moments."""
    url = f"http://127.0.0.1:{server.server_port}/live-sound.ts"
    assert main(["transcode", url, str(tmp_path / "live.mp4"), "--duration", "1", "-q"]) == 0
    assert server.requests["/live-sound.ts"] == 1
    with av.open(str(tmp_path / "live.mp4")) as container:
        video = container.streams.video[0]
        assert float(video.duration * video.time_base) == pytest.approx(1.0, abs=0.05)
        sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert len(sound) / LIVE_RATE == pytest.approx(1.0, abs=0.06)
    peak = np.fft.rfftfreq(len(sound), 1 / LIVE_RATE)[np.abs(np.fft.rfft(sound)).argmax()]
    assert abs(peak - LIVE_TONE) < 5
