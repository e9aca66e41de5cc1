"""The label map codec (cgx.data.label_maps): what it reads, and the named errors for what it refuses."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cgx.config import LabelSpec
from cgx.data.label_maps import decode_label_map, encode_label_map, label_files, read_label_map
from cgx.errors import DataError

SPEC = LabelSpec(classes=4, ignore_index=255)
PALETTE = LabelSpec(classes=3, palette=[[0, 0, 0], [255, 0, 0], [0, 128, 255]])


def png(array: np.ndarray, mode: str, palette: list[int] | None = None) -> bytes:
    image = Image.fromarray(array) if mode == "I;16" else Image.fromarray(array, mode)
    if palette is not None:
        image.putpalette(palette)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def classes_grid() -> np.ndarray:
    return np.array([[0, 1, 2, 3], [3, 2, 255, 0]], dtype=np.uint8)


def test_index_modes_read_as_their_values():
    expected = classes_grid().astype(np.int64)
    for data in (png(classes_grid(), "L"), png(classes_grid(), "P", [7] * 768),
                 png(classes_grid().astype(np.uint16), "I;16")):
        got = decode_label_map(data, "x.png", SPEC, size=(4, 2))
        assert got.dtype == np.int64 and np.array_equal(got, expected)


def test_16_bit_classes_above_255():
    wide = np.array([[0, 300], [299, 1000]], dtype=np.uint16)
    got = decode_label_map(png(wide, "I;16"), "w.png", LabelSpec(classes=301, ignore_index=1000))
    assert got.tolist() == [[0, 300], [299, 1000]]
    assert np.array_equal(decode_label_map(encode_label_map(got), "e.png", LabelSpec(classes=301, ignore_index=1000)), got)


def test_class_out_of_range_is_named():
    bad = classes_grid().copy()
    bad[1, 3] = 4  # classes are 0..3, 255 ignored
    with pytest.raises(DataError) as e:
        decode_label_map(png(bad, "L"), "maps/bad.png", SPEC, key="data.a.labels")
    text = str(e.value)
    assert "maps/bad.png" in text and "holds 4 at x=3, y=1" in text and "classes 0..3 or ignore_index 255" in text
    assert "data.a.labels" in text


def test_size_unlike_the_image_is_named():
    with pytest.raises(DataError, match=r"lbl\.png is 4x2, its image is 4x3"):
        decode_label_map(png(classes_grid(), "L"), "lbl.png", SPEC, size=(4, 3))


def test_palette_maps_colours_to_classes_and_refuses_others():
    rgb = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 128, 255], [255, 0, 0]]], dtype=np.uint8)
    assert decode_label_map(png(rgb, "RGB"), "c.png", PALETTE).tolist() == [[0, 1], [2, 1]]
    rgb[1, 0] = [0, 128, 254]  # one step off a palette colour
    with pytest.raises(DataError) as e:
        decode_label_map(png(rgb, "RGB"), "c.png", PALETTE, key="data.b.labels")
    assert "colour [0, 128, 254] at x=0, y=1" in str(e.value) and "not in data.b.labels.palette" in str(e.value)
    with pytest.raises(DataError, match="palette is not set"):
        decode_label_map(png(rgb, "RGB"), "c.png", SPEC)


def test_other_modes_and_formats_are_refused():
    with pytest.raises(DataError, match="mode LA"):
        decode_label_map(png(np.zeros((2, 2, 2), np.uint8), "LA"), "la.png", SPEC)
    buf = io.BytesIO()
    Image.fromarray(classes_grid(), "L").save(buf, format="JPEG")
    with pytest.raises(DataError, match="JPEG image; label maps are PNG"):
        decode_label_map(buf.getvalue(), "j.png", SPEC)
    with pytest.raises(DataError, match="cannot read label map t.png"):
        decode_label_map(b"not a png", "t.png", SPEC)
    with pytest.raises(DataError, match="empty"):
        decode_label_map(b"", "e.png", SPEC)


def test_missing_label_file_is_named(tmp_path):
    images, labels = tmp_path / "trainA", tmp_path / "trainA_labels"
    (images / "sub").mkdir(parents=True)
    labels.mkdir()
    files = [images / "a.jpg", images / "sub" / "b.jpg"]
    for f in files:
        f.write_bytes(b"x")
    (labels / "a.png").write_bytes(png(classes_grid(), "L"))
    with pytest.raises(DataError, match=r"the image .*sub/b\.jpg has no label map .*trainA_labels/sub/b\.png"):
        label_files(files, images, labels, "data.a.labels")
    (labels / "sub").mkdir()
    (labels / "sub" / "b.png").write_bytes(png(classes_grid(), "L"))
    found = label_files(files, images, labels, "data.a.labels")
    assert read_label_map(found[1], SPEC).shape == (2, 4)
    with pytest.raises(DataError, match="label maps' folder .* is not found"):
        label_files(files, images, tmp_path / "nowhere", "data.a.labels")
