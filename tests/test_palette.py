"""Palette, presets and palette file formats."""

import dataclasses
import json
import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import icc_profile
from livequant import presets
from livequant.errors import SinkError, SourceError
from livequant.palette import Palette
from livequant.presets import resolve

SUFFIXES = [".gpl", ".act", ".json", ".hex", ".txt", ".png"]

channels = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
palettes = st.lists(channels, min_size=1, max_size=256).map(Palette)


def write_rgb_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def assert_one_line_naming(error, path):
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message


# --- the Palette value ---

def test_colors_are_a_read_only_uint8_copy():
    source = np.array([[1, 2, 3], [4, 5, 6]])
    p = Palette(source, name="two")
    source[0, 0] = 99
    assert p.colors.dtype == np.uint8 and p.colors.shape == (2, 3)
    assert p.colors.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="read-only"):
        p.colors[0, 0] = 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "other"
    assert len(p) == 2 and p.name == "two"


def test_equality_and_hash_follow_colours_not_names():
    a = Palette([(0, 0, 0), (255, 255, 255)], name="a")
    b = Palette(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), name="b")
    reversed_ = Palette([(255, 255, 255), (0, 0, 0)])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != reversed_
    assert a != [(0, 0, 0), (255, 255, 255)]


@pytest.mark.parametrize(("colors", "error", "fragment"), [
    (np.zeros((300, 3), np.uint8), ValueError, "got (300, 3)"),
    (np.zeros((0, 3), np.uint8), ValueError, "got (0, 3)"),
    (np.zeros((4, 4), np.uint8), ValueError, "got (4, 4)"),
    ([], ValueError, "got (0,)"),
    ([(1, 2, 3), (4, 5)], ValueError, "ragged"),
    (np.zeros((2, 3), np.float32), TypeError, "float32"),
    ([(True, False, True)], TypeError, "bool"),
    ([(0, 0, 256)], ValueError, "0..256"),
    ([(-1, 0, 0)], ValueError, "-1..0"),
    ("#ffffff", TypeError, "from_hex"),
])
def test_invalid_colors_name_the_argument_and_what_arrived(colors, error, fragment):
    with pytest.raises(error, match="palette colors") as caught:
        Palette(colors)
    assert fragment in str(caught.value)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="palette name must be a str, got int"):
        Palette([(0, 0, 0)], name=3)


def test_from_hex_and_to_hex():
    p = Palette.from_hex(["#FF004D", "00e436", " #29adff "])
    assert p.colors.tolist() == [[255, 0, 77], [0, 228, 54], [41, 173, 255]]
    assert p.to_hex() == ["#ff004d", "#00e436", "#29adff"]
    assert Palette.from_hex("#ff004d, #00e436 #29adff") == p
    with pytest.raises(ValueError, match=r"hex colour 1 'nothex' is not a '#rrggbb' colour"):
        Palette.from_hex(["#000000", "nothex"])
    with pytest.raises(ValueError, match=r"hex colour 0 5 is not"):
        Palette.from_hex([5])
    with pytest.raises(ValueError, match=r"got \(0,\)"):
        Palette.from_hex([])


# --- files: round trips ---

MIXED = Palette([(255, 0, 77), (0, 0, 0), (255, 0, 77), (1, 2, 3), (255, 255, 255)], name="mixed")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_keeps_colours_and_order(tmp_path, suffix):
    path = tmp_path / f"mixed{suffix}"
    MIXED.save(path)
    back = Palette.from_file(path)
    assert back == MIXED
    assert back.colors.tolist() == MIXED.colors.tolist()
    assert [f.name for f in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("suffix", SUFFIXES)
@settings(max_examples=40, deadline=None)
@given(palette=palettes)
def test_random_palettes_round_trip(tmp_path_factory, suffix, palette):
    path = tmp_path_factory.mktemp("rt") / f"p{suffix}"
    palette.save(path)
    assert Palette.from_file(path) == palette


def test_gpl_keeps_the_name_and_other_formats_use_the_file_stem(tmp_path):
    MIXED.save(tmp_path / "a.gpl")
    MIXED.save(tmp_path / "b.json")
    assert Palette.from_file(tmp_path / "a.gpl").name == "mixed"
    assert Palette.from_file(tmp_path / "b.json").name == "b"


def test_png_swatch_is_an_image_of_16_pixel_squares(tmp_path):
    palette = Palette([(i * 10, 255 - i * 10, i) for i in range(20)])
    palette.save(tmp_path / "s.png")
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "s.png")), cv2.COLOR_BGR2RGB)
    assert image.shape == (32, 256, 3)  # 16 squares in the first row, 4 in the second
    for i, color in enumerate(palette.colors.tolist()):
        row, column = divmod(i, 16)
        square = image[row * 16:row * 16 + 16, column * 16:column * 16 + 16]
        assert (square == color).all()


@pytest.mark.parametrize("indexed", [False, True])
def test_a_png_palette_keeps_its_values_whatever_profile_it_is_tagged_with(tmp_path, indexed):
    """A palette file holds colour values, as an indexed PNG's table does: a truecolour one tagged Adobe RGB
    is not converted to sRGB, as a picture is (`livequant.icc`)."""
    from PIL import Image

    colors = np.array([[200, 40, 30], [20, 180, 60], [30, 60, 210], [250, 250, 250]], np.uint8)
    picture = Image.fromarray(np.repeat(colors[None], 4, axis=0))
    picture = picture.quantize(4, method=Image.Quantize.MEDIANCUT) if indexed else picture
    picture.save(tmp_path / "tagged.png", icc_profile=icc_profile())
    assert sorted(map(tuple, Palette.from_file(tmp_path / "tagged.png").colors.tolist())) == sorted(
        map(tuple, colors.tolist()))


def test_save_refuses_to_overwrite_when_asked(tmp_path):
    path = tmp_path / "p.hex"
    path.write_text("keep\n")
    with pytest.raises(SinkError, match="exists; use -y to overwrite"):
        MIXED.save(path, overwrite=False)
    assert path.read_text() == "keep\n"
    MIXED.save(path)
    assert Palette.from_file(path) == MIXED


def test_save_into_a_missing_folder_raises_sink_error(tmp_path):
    with pytest.raises(SinkError, match="cannot write palette file") as caught:
        MIXED.save(tmp_path / "no" / "p.gpl")
    assert_one_line_naming(caught, tmp_path / "no" / "p.gpl")


@pytest.mark.parametrize("action", [Palette.from_file, MIXED.save])
def test_unknown_suffix(tmp_path, action):
    with pytest.raises(ValueError, match=r"unknown palette file type '\.pal'; use one of \.gpl"):
        action(tmp_path / "x.pal")


# --- files: formats as other programs write them ---

def test_gimp_file_with_comments_columns_names_and_crlf(tmp_path):
    path = tmp_path / "g.gpl"
    path.write_bytes(b"GIMP Palette\r\nName: My Pal\r\nColumns: 4\r\n#\r\n# comment\r\n"
                     b"  0   0   0\tBlack\r\n255 128   1 Warm orange\r\n\r\n 12 34 56\r\n")
    p = Palette.from_file(path)
    assert p.colors.tolist() == [[0, 0, 0], [255, 128, 1], [12, 34, 56]]
    assert p.name == "My Pal"


def test_act_without_and_with_the_count_trailer(tmp_path):
    table = bytes(range(256)) * 3
    (tmp_path / "full.act").write_bytes(table)
    (tmp_path / "four.act").write_bytes(table + struct.pack(">HH", 4, 0xFFFF))
    assert len(Palette.from_file(tmp_path / "full.act")) == 256
    four = Palette.from_file(tmp_path / "four.act")
    assert four.colors.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_act_without_a_count_ends_where_its_black_padding_starts(tmp_path):
    """Three colours padded with black to 768 bytes read as 256 entries, 253 of them black (palettes of more
    than 64 colours are matched in another working space); the padding is one black now, the same nearest
    colours."""
    (tmp_path / "three.act").write_bytes(bytes([255, 0, 0, 0, 255, 0, 9, 9, 9]).ljust(768, b"\0"))
    assert Palette.from_file(tmp_path / "three.act").to_hex() == ["#ff0000", "#00ff00", "#090909", "#000000"]
    (tmp_path / "black.act").write_bytes(bytes(768))
    assert Palette.from_file(tmp_path / "black.act").to_hex() == ["#000000"]


def test_json_object_as_lospec_exports_it(tmp_path):
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"name": "Lospec", "author": "", "colors": ["0f380f", "9bbc0f"]}))
    p = Palette.from_file(path)
    assert p.to_hex() == ["#0f380f", "#9bbc0f"] and p.name == "Lospec"


def test_paint_net_txt_with_comments_and_alpha(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text(";paint.net Palette File\n;Colors: 2\nFF0F380F\n\nff9bbc0f\n")
    assert Palette.from_file(path).to_hex() == ["#0f380f", "#9bbc0f"]


def test_truecolour_png_gives_its_colours_in_order_of_first_appearance(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :] = (9, 9, 9)
    rgb[0, 0] = (200, 10, 10)
    rgb[2, 5] = (10, 200, 10)
    write_rgb_png(tmp_path / "t.png", rgb)
    assert Palette.from_file(tmp_path / "t.png").colors.tolist() == [[200, 10, 10], [9, 9, 9], [10, 200, 10]]


def test_a_pictures_wholly_transparent_pixels_are_no_colour_of_its_palette(tmp_path):
    bgra = np.zeros((2, 4, 4), np.uint8)  # OpenCV's order
    bgra[0] = [(0, 0, 255, 255), (0, 255, 0, 255), (255, 0, 0, 128), (30, 20, 10, 255)]  # one half transparent
    bgra[1] = (7, 7, 7, 0)  # a transparent row: no colour (flattened on white, it became #ffffff)
    assert cv2.imwrite(str(tmp_path / "swatch.png"), bgra)
    assert Palette.from_file(tmp_path / "swatch.png").to_hex()[:2] == ["#ff0000", "#00ff00"]
    assert len(Palette.from_file(tmp_path / "swatch.png")) == 4


def test_photo_png_with_too_many_colours_points_to_extraction(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    write_rgb_png(tmp_path / "photo.png", rgb)
    extract = r"distinct colours, more than 256.*livequant palette IMAGE -o FILE"
    with pytest.raises(ValueError, match=extract) as caught:
        Palette.from_file(tmp_path / "photo.png")
    assert_one_line_naming(caught, tmp_path / "photo.png")


# --- files: errors ---

@pytest.mark.parametrize(("name", "content", "cause"), [
    ("a.gpl", b"GIMP Palette\nName: x\n1 2 3 one\nfoo\n", r"line 4 'foo' is not 'R G B name'"),
    ("b.gpl", b"GIMP Palette\n1 2 300\n", r"line 2 '1 2 300' is not 'R G B name'"),
    ("c.gpl", b"JASC-PAL\n", r"first line is not 'GIMP Palette'"),
    ("d.gpl", b"GIMP Palette\n", r"it holds 0 colours"),
    ("e.act", b"\0" * 100, r"it is 100 bytes long"),
    ("f.act", b"\0" * 768 + struct.pack(">HH", 0, 0), r"its colour count is 0"),
    ("g.act", b"\0" * 768 + struct.pack(">HH", 300, 0), r"its colour count is 300"),
    ("h.json", b'["#000000", "#zzzzzz"]', r"entry 1 '#zzzzzz' is not a '#rrggbb' colour"),
    ("i.json", b'{"colours": []}', r"not a list of"),
    ("j.json", b"", r"Expecting value"),
    ("k.json", json.dumps(["#000000"] * 257).encode(), r"it holds 257 colours"),
    ("l.hex", b"000000\nfff\n", r"line 2 'fff' is not a '#rrggbb' colour"),
    ("m.txt", b"\xff\xfe\x00garbage", r"line 1 .* is not a '#rrggbb' colour"),
    ("n.hex", b"\n\n", r"it holds 0 colours"),
    ("o.png", b"GIF89a", r"does not start with the PNG signature"),
    ("p.png", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", r"'IHDR' chunk is truncated or corrupt"),
])
def test_malformed_files_raise_one_line_value_error(tmp_path, name, content, cause):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=cause) as caught:
        Palette.from_file(path)
    assert_one_line_naming(caught, path)
    assert f"{path} is not a valid " in str(caught.value)


def test_missing_file_and_folder_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist") as caught:
        Palette.from_file(tmp_path / "missing.gpl")
    assert_one_line_naming(caught, tmp_path / "missing.gpl")
    assert isinstance(caught.value, OSError)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(SourceError, match="cannot read palette file"):
        Palette.from_file(tmp_path / "dir.json")


mutations = st.lists(st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, 10_000),
                                st.sampled_from(b"\0\n\r\t #,:;\"[]{}-0123456789abcdefxyzGIMP\x80\xff")),
                      min_size=1, max_size=4)


def mutate(data, edits):
    """Replace, insert or delete single bytes of ``data``."""
    data = bytearray(data)
    for kind, at, byte in edits:
        at %= len(data) + 1
        if kind == "insert":
            data.insert(at, byte)
        elif at < len(data) and kind == "replace":
            data[at] = byte
        elif at < len(data):
            del data[at]
    return bytes(data)


@pytest.mark.parametrize("suffix", SUFFIXES)
@settings(max_examples=150, deadline=None)
@given(case=st.binary(max_size=900) | st.tuples(st.lists(channels, min_size=1, max_size=20), mutations))
def test_fuzzed_files_parse_or_raise_value_error(tmp_path_factory, suffix, case):
    path = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    if isinstance(case, bytes):
        path.write_bytes(case)
    else:
        colors, edits = case
        Palette(colors).save(path)
        path.write_bytes(mutate(path.read_bytes(), edits))
    try:
        palette = Palette.from_file(path)
    except ValueError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert palette.colors.dtype == np.uint8 and 1 <= len(palette) <= 256


# --- presets ---

@pytest.mark.parametrize("name", presets.names())
def test_every_preset_has_distinct_colours_and_a_description(name):
    p = presets.get(name)
    assert 1 <= len(p) <= 256
    assert len(np.unique(p.colors, axis=0)) == len(p)
    assert p.name == name
    assert presets.descriptions()[name]


@pytest.mark.parametrize(("name", "count", "includes"), [
    ("gameboy", 4, "#0f380f"), ("pico8", 16, "#ff004d"), ("c64", 16, "#68372b"), ("ega", 16, "#aa5500"),
    ("cga0", 4, "#aa5500"), ("zx-spectrum", 15, "#d7d7d7"), ("nes", 54, "#fc9838"),
    ("websafe", 216, "#3399cc"),
])
def test_known_preset_values(name, count, includes):
    p = presets.get(name)
    assert len(p) == count and includes in p.to_hex()


def test_cga_sets():
    assert presets.get("cga1-high").to_hex() == ["#000000", "#55ffff", "#ff55ff", "#ffffff"]
    assert presets.get("cga0-high").to_hex() == ["#000000", "#55ff55", "#ff5555", "#ffff55"]
    assert presets.get("cga-mode5").to_hex() == ["#000000", "#00aaaa", "#aa0000", "#aaaaaa"]
    assert presets.get("CGA") == presets.get("cga1-high")


def test_zx_spectrum_has_black_once_and_bright_white():
    hexes = presets.get("zx-spectrum").to_hex()
    assert hexes.count("#000000") == 1 and "#ffffff" in hexes and "#0000d7" in hexes


def test_get_is_case_insensitive_and_lists_known_names_when_unknown():
    assert presets.get(" PICO8 ") == presets.get("pico8")
    # as people write them: "pico-8" was unknown
    assert presets.get("PICO-8") == presets.get("pico_8") == presets.get("pico8")
    assert presets.get("Game Boy") == presets.get("gameboy") and presets.get("ZX Spectrum").name == "zx-spectrum"
    assert presets.get("cga 1 high").name == "cga1-high" and presets.get("gray-16") == presets.grayscale(16)
    assert resolve("pico-8").name == "pico8"
    with pytest.raises(ValueError, match="unknown palette preset './gameboy'"):  # a path stays a path
        presets.get("./gameboy")
    with pytest.raises(ValueError, match=r"unknown palette preset 'amiga'; known: gameboy, .*pico8.*grayN"):
        presets.get("amiga")
    with pytest.raises(TypeError, match="preset name must be a str"):
        presets.get(8)


def test_grayscale():
    assert presets.grayscale(4).colors[:, 0].tolist() == [0, 85, 170, 255]
    assert presets.get("gray256") == presets.grayscale(256) == Palette([(i, i, i) for i in range(256)])
    assert presets.get("grey16") == presets.grayscale(16)
    for n in (1, 257):
        with pytest.raises(ValueError, match=f"grayscale n must be in 2..256, got {n}"):
            presets.grayscale(n)
    with pytest.raises(TypeError, match="grayscale n must be an int, got float"):
        presets.grayscale(4.0)


# --- resolve ---

def test_resolve(tmp_path, monkeypatch):
    p = presets.get("gameboy")
    assert resolve(p) is p
    assert resolve("GameBoy") == p
    p.save(tmp_path / "gb.gpl")
    assert resolve(str(tmp_path / "gb.gpl")) == p
    assert resolve(tmp_path / "gb.gpl") == p
    monkeypatch.chdir(tmp_path)
    unknown = r"unknown palette 'sunset': not a preset \(known: gameboy, .*\) nor a palette file"
    with pytest.raises(ValueError, match=unknown):
        resolve("sunset")
    with pytest.raises(SourceError, match="does not exist"):
        resolve("sunset.gpl")
    with pytest.raises(TypeError, match="got int"):
        resolve(16)
