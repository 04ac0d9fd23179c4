"""livequant inside your own PyAV decode/encode loop; the audio is copied untouched.

    python samples/pyav_loop.py in.mp4 out.mkv --palette gameboy

(tests/test_samples.py runs it on a clip it generates, with a tone.)
"""

import argparse

import av

import livequant

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("input", help="a video, with sound or without")
parser.add_argument("output", help="output video; .mkv keeps the palette colours exact (FFV1)")
parser.add_argument("--palette", default="gameboy", help="a preset or a palette file (default: gameboy)")
args = parser.parse_args()

quantizer = livequant.Quantizer(palette=args.palette, dither="bayer4")
with av.open(args.input) as inp, av.open(args.output, "w") as out:
    video_in = inp.streams.video[0]
    video_out = out.add_stream("ffv1", rate=video_in.average_rate)
    video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "bgr0"
    audio_in = inp.streams.audio[0] if inp.streams.audio else None
    audio_out = out.add_stream_from_template(audio_in) if audio_in else None  # stream copy, no re-encoding
    for packet in inp.demux(*[s for s in (video_in, audio_in) if s is not None]):
        if packet.stream is audio_in:
            if packet.dts is not None:  # the flushing packet at the end has none
                packet.stream = audio_out
                out.mux(packet)
            continue
        for frame in packet.decode():
            # PyAV frame -> (H, W, 3) uint8 RGB -> quantized RGB -> PyAV frame with the same timestamp.
            rgb = quantizer.quantize(frame.to_ndarray(format="rgb24"))
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            new.pts, new.time_base = frame.pts, frame.time_base
            out.mux(video_out.encode(new))
    out.mux(video_out.encode(None))  # flush the encoder
print(f"wrote {args.output} in the {quantizer.palette.name} palette"
      f"{' with the audio copied' if audio_out else ''}")
