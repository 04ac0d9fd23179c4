"""The preview window (OpenCV's HighGUI): `Preview`, once an X display is found to answer."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import socket
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from livequant.errors import SinkError, write_failed
from livequant.frames import FpsCounter, QuantizedFrame, check_frame, on_checkerboard
from livequant.sinks.images import write_still
from livequant.sources import c_stderr

__all__ = ["Preview", "X_CONNECT_SECONDS", "X_CONNECT_TRIES", "X_RETRY_SECONDS"]

log = logging.getLogger("livequant")

#: Seconds to wait for an X server to take a connection before calling the display dead.
X_CONNECT_SECONDS = 2.0
#: Connection setups tried, this many seconds apart, before the server is taken to refuse this process.
X_CONNECT_TRIES, X_RETRY_SECONDS = 5, 0.05


@contextlib.contextmanager
def _display_held():
    """Raise `SinkError` where no window can open (Qt would abort the process instead); else hold a connection to
    the X server while the block opens the window: a server resets when its last client leaves (Xvfb as xvfb-run
    starts it), and a connection made during the reset fails (145 of 2,000 here), which Qt answers by aborting."""
    display = os.environ.get("DISPLAY")
    if not sys.platform.startswith("linux"):
        yield
        return
    if not display:
        cause = "no display ($DISPLAY is not set)"
    elif not _x_server_answers(display):
        cause = f"no X server answers on $DISPLAY={display}"
    else:
        with _x_connection(display) as let_in:
            if let_in:
                yield
                return
        cause = (f"the X server on $DISPLAY={display} refused the connection (no authorization it takes: check "
                 "$XAUTHORITY, as after sudo or su; or it has too many clients)")
    raise SinkError(f"cannot open a preview window: {cause}; use `livequant transcode` to write a file instead")


def _x_server_answers(display: str) -> bool:
    """Whether the X server ``display`` names (``[host]:number[.screen]``) takes a connection: its socket in
    /tmp/.X11-unix for a local one, TCP port 6000 + number for a host's (an SSH forwarding that outlived its
    session refuses it). True for a form not known here: Xlib may know it."""
    named = re.fullmatch(r"(?P<host>[^:/]*):(?P<number>\d+)(\.\d+)?", display)
    if named is None:
        return True
    host, number = named["host"], int(named["number"])
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as link:
                link.settimeout(X_CONNECT_SECONDS)
                link.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + number), X_CONNECT_SECONDS).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _x_connection(display: str):
    """A connection to the X server ``display`` names, set up with the authorization $XAUTHORITY holds (libxcb,
    as Qt connects) and held while the block runs; yields whether the server let this process in (one that
    refuses made Qt abort the process). True, and no connection, where libxcb is not found."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        yield True
        return
    xcb = ctypes.CDLL(name)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    for attempt in range(X_CONNECT_TRIES):  # a server resetting (its last client just left) refuses a moment
        with c_stderr():  # libxcb prints the server's reason for refusing
            connection = xcb.xcb_connect(display.encode(), None)
        let_in = xcb.xcb_connection_has_error(connection) == 0
        if let_in or attempt == X_CONNECT_TRIES - 1:
            break
        xcb.xcb_disconnect(connection)
        time.sleep(X_RETRY_SECONDS)
    try:
        yield let_in
    finally:
        xcb.xcb_disconnect(connection)


def _quiet_qt() -> None:
    """Point OpenCV's Qt at an existing font folder: for the missing one OpenCV names, Qt prints five
    "QFontDatabase: Cannot find font directory" warnings when the first window opens."""
    fonts = os.environ.get("QT_QPA_FONTDIR")
    if fonts is not None and not os.path.isdir(fonts):
        system = "/usr/share/fonts"
        os.environ["QT_QPA_FONTDIR"] = system if os.path.isdir(system) else os.path.dirname(cv2.__file__)


class Preview:
    """Show frames in a window with a HUD and a palette strip, and take keys.

    ``s`` saves ``livequant-snapshot-N.png`` in the current directory, ``q`` or
    Esc (or closing the window) sets ``quit_requested``; every other key goes
    to ``on_key``.

    Parameters
    ----------
    title : str
        Window title.
    on_key : callable, optional
        ``on_key(key)`` with the key's code (``ord("d")``), such as a handler
        that reconfigures the quantizer.
    status : callable, optional
        ``status()`` returns text for the end of the HUD line, such as the dither.
    show_source : bool
        Show the input frame beside the quantized one.
    """

    interactive = True

    def __init__(self, title: str = "livequant", on_key=None, status=None, show_source: bool = False):
        _quiet_qt()
        self.title = title
        self.on_key = on_key
        self.status = status
        self.show_source = show_source
        self.quit_requested = False
        self._fps = FpsCounter()
        self._rate = 0.0
        self._last = None
        self._closed = False
        with _display_held():
            try:
                cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
            except cv2.error as e:
                raise SinkError(f"cannot open a preview window: {e.err}; use `livequant transcode` instead") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def write(self, qframe: QuantizedFrame) -> None:
        """Show one frame and handle the keys pressed since the last (nothing once the window is closed)."""
        if self._closed:
            return  # imshow would open the window again
        self._last = qframe
        self._rate = self._fps.tick()
        cv2.imshow(self.title, self._compose(qframe))
        self.idle()

    def idle(self) -> None:
        """Handle the keys pressed since the last call, and the window closed by the user (call it between
        frames when they come slowly; `livequant.pipeline.run` does)."""
        if self._closed:
            return
        self.handle_key(cv2.waitKey(1))
        if self._last is not None and not self._visible():  # before its first frame the window may not be shown
            self._closed = self.quit_requested = True

    def _visible(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt's answer once the user has closed the last window
            return False

    def _compose(self, qframe: QuantizedFrame) -> np.ndarray:
        """The window image (BGR): frame(s) scaled up to >= 480 px wide, transparency on a checkerboard, HUD on
        top, palette strip below."""
        rgb, opaque = check_frame(qframe.rgb, "qframe.rgb"), qframe.opaque
        if self.show_source and qframe.source is not None and qframe.source.shape == rgb.shape:
            rgb = np.hstack([qframe.source, rgb])
            opaque = None if opaque is None else np.hstack([opaque, opaque])
        scale = -(-480 // rgb.shape[1])
        if scale > 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            opaque = None if opaque is None else opaque.repeat(scale, axis=0).repeat(scale, axis=1)
        rgb = on_checkerboard(rgb, opaque)
        colors = np.asarray(qframe.palette.colors, np.uint8)
        width = rgb.shape[1]
        strip = np.broadcast_to(colors[np.arange(width) * len(colors) // width], (16, width, 3))
        image = cv2.cvtColor(np.vstack([rgb, strip]), cv2.COLOR_RGB2BGR)
        cv2.rectangle(image, (0, 0), (width, 22), (0, 0, 0), cv2.FILLED)
        cv2.putText(image, self._hud(qframe), (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        return image

    def _hud(self, qframe: QuantizedFrame) -> str:
        name = qframe.palette.name or "adaptive"
        lag = f"  lag {qframe.palette_lag}" if name == "adaptive" else ""
        status = f"  {self.status()}" if self.status is not None else ""
        return f"{self._rate:5.1f} fps  K={len(qframe.palette.colors)}  palette={name}{lag}{status}"

    def handle_key(self, key: int) -> None:
        """Act on a key code as returned by ``cv2.waitKey`` (-1 for none)."""
        key &= 0xFF
        if key in (ord("q"), 27):
            self.quit_requested = True
        elif key == ord("s") and self._last is not None:
            self.snapshot()
        elif key != 0xFF and self.on_key is not None:
            self.on_key(key)

    def snapshot(self) -> Path | None:
        """Save the last frame as ``livequant-snapshot-N.png`` (first free N) in the cwd; print and return it
        (None, with a warning, where it cannot be written)."""
        number = 1
        while (path := Path(f"livequant-snapshot-{number}.png")).exists():
            number += 1
        try:
            write_still(path, self._last)
        except OSError as e:  # the preview goes on
            log.warning(str(write_failed("save the snapshot", path.resolve(), e)))
            return None
        print(f"saved {path}")
        return path

    def close(self) -> None:
        """Close the window (if the user has not already)."""
        if not self._closed and self._visible():
            self._closed = True
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
