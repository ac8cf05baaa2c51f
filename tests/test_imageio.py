"""Reading and writing images: round trips per format and bit depth, and every bad file."""

from __future__ import annotations

import errno
import sys

import numpy as np
import pytest
import torch

from restorekit.errors import InputError
from restorekit.imageio import (
    IMAGE_SUFFIXES,
    default_bit_depth,
    format_of,
    list_images,
    load_image,
    read_image,
    write_image,
)


def _levels(c, h, w, top, seed=0):
    """An image whose values are exact multiples of 1/top (so quantization is lossless)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, top + 1, (1, c, h, w), generator=g).float() / top


def _smooth(c, h, w):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    chans = [(0.2 + 0.6 * (yy * (i + 1) / c + xx) / 2) for i in range(c)]
    return torch.stack(chans)[None]


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _only(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bits", [8, 16])
def test_lossless_round_trip(tmp_path, suffix, channels, bits):
    if suffix == ".png" and bits == 16 and channels == 3:
        pytest.importorskip("png", reason="16-bit colour PNG needs pypng")
    top = 255 if bits == 8 else 65535
    x = _levels(channels, 9, 13, top)
    path = write_image(tmp_path / f"img{suffix}", x, bit_depth=bits)
    img = read_image(path)
    assert img.tensor.dtype == torch.float32
    assert img.tensor.shape == (1, channels, 9, 13)
    assert img.bit_depth == bits
    assert img.alpha is None
    assert img.format == format_of(path)
    assert torch.equal(img.tensor, x.float())
    assert _only(tmp_path) == [f"img{suffix}"]  # no temporary file left behind


ALPHA_CASES = [
    (suffix, bits, channels)
    for suffix, bits in [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".tif", None), (".npy", None)]
    for channels in (1, 3)
    if not (suffix == ".npy" and channels == 1)  # a .npy cannot hold gray + alpha: tested below
]


@pytest.mark.parametrize("suffix,bits,channels", ALPHA_CASES)
def test_alpha_is_set_aside_and_restored(tmp_path, suffix, bits, channels):
    if suffix == ".png" and bits == 16:
        pytest.importorskip("png", reason="16-bit PNG with alpha needs pypng")
    top = 255 if bits in (8, None) else 65535
    x = _levels(channels, 6, 7, top, seed=1)
    alpha = _levels(1, 6, 7, top, seed=2)
    path = write_image(tmp_path / f"a{suffix}", x, alpha=alpha, bit_depth=bits)
    img = read_image(path)
    assert img.tensor.shape == (1, channels, 6, 7), "the alpha must not count as a colour channel"
    assert img.alpha is not None and img.alpha.shape == (1, 1, 6, 7)
    assert torch.allclose(img.tensor, x, atol=1e-7)
    assert torch.allclose(img.alpha, alpha, atol=1e-7)
    assert img.bit_depth == bits


def test_gray_alpha_cannot_go_to_npy(tmp_path):
    with pytest.raises(InputError, match="gray image with alpha"):
        write_image(tmp_path / "x.npy", torch.rand(1, 1, 4, 4), alpha=torch.ones(1, 1, 4, 4))
    assert _only(tmp_path) == []


def test_npy_keeps_float_values_outside_unit_range(tmp_path):
    x = torch.randn(1, 3, 5, 6) * 2  # noise: far outside [0, 1]
    write_image(tmp_path / "n.npy", x, bit_depth=8)  # bit depth is ignored for .npy
    stored = np.load(tmp_path / "n.npy")
    assert stored.shape == (5, 6, 3) and stored.dtype == np.float32  # channels last, like scikit-image
    img = read_image(tmp_path / "n.npy")
    assert img.bit_depth is None and img.format == "npy"
    assert torch.equal(img.tensor, x)


@pytest.mark.parametrize("shape,channels", [((5, 6), 1), ((5, 6, 1), 1), ((5, 6, 3), 3)])
def test_npy_layouts(tmp_path, shape, channels):
    a = np.random.default_rng(0).random(shape).astype(np.float64)
    np.save(tmp_path / "a.npy", a)
    t = load_image(tmp_path / "a.npy")
    assert t.shape == (1, channels, 5, 6)
    expected = a if a.ndim == 2 else np.moveaxis(a, -1, 0)
    assert np.allclose(t[0].numpy(), expected.reshape(channels, 5, 6))


def test_npy_integer_arrays_are_scaled(tmp_path):
    np.save(tmp_path / "u8.npy", np.array([[0, 255], [51, 102]], dtype=np.uint8))
    np.save(tmp_path / "u16.npy", np.array([[0, 65535]], dtype=np.uint16))
    a = read_image(tmp_path / "u8.npy")
    assert a.bit_depth == 8 and torch.allclose(a.tensor.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))
    b = read_image(tmp_path / "u16.npy")
    assert b.bit_depth == 16 and b.tensor.flatten().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(tmp_path, channels):
    x = _smooth(channels, 32, 40)
    write_image(tmp_path / "s.jpg", x)
    img = read_image(tmp_path / "s.jpg")
    assert img.format == "jpeg" and img.bit_depth == 8 and img.tensor.shape == x.shape
    assert _psnr(img.tensor, x) > 35


def test_integer_formats_clip_and_round(tmp_path):
    x = torch.tensor([[[[-0.5, 0.0, 0.5, 1.0, 1.7]]]])
    write_image(tmp_path / "c.png", x)
    got = read_image(tmp_path / "c.png").tensor.flatten()
    assert torch.allclose(got, torch.tensor([0.0, 0.0, 128 / 255, 1.0, 1.0]))


def test_palette_png_is_read_as_rgb(tmp_path):
    from PIL import Image

    im = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.tensor.shape == (1, 3, 2, 2)
    assert img.tensor[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert img.tensor[0, :, 0, 1].tolist() == [0.0, 0.0, 1.0]


def test_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    im = Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "r.jpg").tensor.shape == (1, 3, 20, 10)


def test_write_accepts_chw_and_hw(tmp_path):
    write_image(tmp_path / "a.png", torch.zeros(3, 4, 5))
    write_image(tmp_path / "b.png", torch.zeros(4, 5))
    assert read_image(tmp_path / "a.png").tensor.shape == (1, 3, 4, 5)
    assert read_image(tmp_path / "b.png").tensor.shape == (1, 1, 4, 5)


def test_default_bit_depth():
    assert default_bit_depth("png", 16) == 16
    assert default_bit_depth("jpeg", 16) == 8
    assert default_bit_depth("png", None) == 8
    assert default_bit_depth("tiff", None) is None
    assert default_bit_depth("npy", 8) is None


def test_list_images(tmp_path):
    for name in ["b.PNG", "a.npy", "c.tif", "notes.txt", ".hidden.png", "d.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.npy", "b.PNG", "c.tif", "d.jpeg"]
    assert set(IMAGE_SUFFIXES) >= {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"}
    with pytest.raises(InputError, match="not a folder"):
        list_images(tmp_path / "a.npy")


# --------------------------------------------------------------------------- bad input
def _good_png(tmp_path):
    return write_image(tmp_path / "good.png", _smooth(3, 16, 16))


def test_truncated_png(tmp_path):
    data = _good_png(tmp_path).read_bytes()
    bad = tmp_path / "trunc.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        read_image(bad)
    msg = str(info.value)
    assert "trunc.png" in msg and "damaged, truncated" in msg and "\n" not in msg


def test_truncated_jpeg(tmp_path):
    write_image(tmp_path / "g.jpg", _smooth(3, 64, 64))
    data = (tmp_path / "g.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="t.jpg.*truncated"):
        read_image(tmp_path / "t.jpg")


def test_truncated_16bit_colour_png(tmp_path):
    pytest.importorskip("png")
    write_image(tmp_path / "g.png", _smooth(3, 16, 16), bit_depth=16)
    data = (tmp_path / "g.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[:60])
    with pytest.raises(InputError, match="t.png.*truncated"):
        read_image(tmp_path / "t.png")


def test_truncated_tiff_and_npy(tmp_path):
    write_image(tmp_path / "g.tif", _smooth(3, 16, 16))
    (tmp_path / "t.tif").write_bytes((tmp_path / "g.tif").read_bytes()[:40])
    with pytest.raises(InputError, match="t.tif"):
        read_image(tmp_path / "t.tif")
    write_image(tmp_path / "g.npy", _smooth(3, 16, 16))
    (tmp_path / "t.npy").write_bytes((tmp_path / "g.npy").read_bytes()[:200])
    with pytest.raises(InputError, match="t.npy.*truncated"):
        read_image(tmp_path / "t.npy")


def test_not_an_image(tmp_path):
    (tmp_path / "text.png").write_text("hello, not a PNG")
    with pytest.raises(InputError, match="cannot read it as PNG"):
        read_image(tmp_path / "text.png")


def test_unknown_format(tmp_path):
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError, match=r"unknown image format '\.gif'.*\.png"):
        read_image(tmp_path / "x.gif")
    with pytest.raises(InputError, match="unknown image format"):
        write_image(tmp_path / "y.bmp", torch.zeros(1, 1, 2, 2))
    assert _only(tmp_path) == ["x.gif"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.png does not exist; check the path"):
        read_image(tmp_path / "nope.png")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_inf(tmp_path, value):
    a = np.zeros((4, 4, 3), dtype=np.float32)
    a[1, 2, 0] = value
    np.save(tmp_path / "bad.npy", a)
    with pytest.raises(InputError, match="bad.npy: 1 NaN or Inf"):
        read_image(tmp_path / "bad.npy")


def test_nan_in_float_tiff(tmp_path):
    import tifffile

    a = np.zeros((4, 4), dtype=np.float32)
    a[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "bad.tif", a)
    with pytest.raises(InputError, match="NaN or Inf"):
        read_image(tmp_path / "bad.tif")


@pytest.mark.parametrize("shape", [(4, 4, 2), (4, 4, 5)])
def test_wrong_channel_count(tmp_path, shape):
    np.save(tmp_path / "c.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(InputError, match=rf"c.npy: {shape[2]} channels.*gray \(1 channel\), RGB \(3\) or RGBA \(4\)"):
        read_image(tmp_path / "c.npy")


def test_channels_first_array_gets_a_hint(tmp_path):
    np.save(tmp_path / "chw.npy", np.zeros((3, 16, 16), dtype=np.float32))
    with pytest.raises(InputError, match="moveaxis"):
        read_image(tmp_path / "chw.npy")


def test_wrong_channel_count_tiff(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "five.tif", np.zeros((4, 4, 5), dtype=np.uint8), photometric="minisblack", planarconfig="contig")
    with pytest.raises(InputError, match="5 channels"):
        read_image(tmp_path / "five.tif")


def test_multi_page_tiff(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 8, 8), dtype=np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="several images"):
        read_image(tmp_path / "stack.tif")


@pytest.mark.parametrize("shape", [(0, 5), (5, 0, 3), (0,)])
def test_empty_image(tmp_path, shape):
    np.save(tmp_path / "e.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(InputError, match="e.npy"):
        read_image(tmp_path / "e.npy")


def test_empty_file(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(InputError, match="zero.png"):
        read_image(tmp_path / "zero.png")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj.npy"):
        read_image(tmp_path / "obj.npy")


def test_unsupported_sample_type(tmp_path):
    np.save(tmp_path / "i32.npy", np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(InputError, match="unsupported sample type int32"):
        read_image(tmp_path / "i32.npy")


def test_write_refuses_bad_tensors(tmp_path):
    with pytest.raises(InputError, match="NaN or Inf"):
        write_image(tmp_path / "n.png", torch.tensor([[[[float("nan")]]]]))
    with pytest.raises(InputError, match="batch of 2"):
        write_image(tmp_path / "b.png", torch.zeros(2, 3, 4, 4))
    with pytest.raises(InputError, match="2 channels"):
        write_image(tmp_path / "c.png", torch.zeros(1, 2, 4, 4))
    with pytest.raises(InputError, match="JPEG cannot store bit depth 16"):
        write_image(tmp_path / "d.jpg", torch.zeros(1, 3, 4, 4), bit_depth=16)
    with pytest.raises(InputError, match="JPEG cannot store an alpha"):
        write_image(tmp_path / "e.jpg", torch.zeros(1, 3, 4, 4), alpha=torch.ones(1, 1, 4, 4))
    with pytest.raises(InputError, match="does not fit"):
        write_image(tmp_path / "f.png", torch.zeros(1, 3, 4, 4), alpha=torch.ones(1, 1, 4, 5))
    with pytest.raises(InputError, match="folder .* does not exist"):
        write_image(tmp_path / "missing" / "g.png", torch.zeros(1, 3, 4, 4))
    assert _only(tmp_path) == []


def test_16bit_colour_png_without_pypng_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "png", None)  # import png -> ImportError
    with pytest.raises(InputError, match="pip install pypng"):
        write_image(tmp_path / "x.png", torch.zeros(1, 3, 4, 4), bit_depth=16)
    assert _only(tmp_path) == []
    # 16-bit gray needs only Pillow.
    write_image(tmp_path / "g.png", torch.zeros(1, 1, 4, 4), bit_depth=16)
    assert read_image(tmp_path / "g.png").bit_depth == 16


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    """A write that fails half-way leaves the previous file intact and no temporary file."""
    import restorekit.imageio as rio

    target = write_image(tmp_path / "keep.png", torch.full((1, 1, 4, 4), 0.5))
    before = target.read_bytes()

    def broken(tmp, samples, fmt):
        tmp.write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rio, "_write_pillow", broken)
    with pytest.raises(InputError, match="no space left on the disk .* free some space"):
        write_image(target, torch.zeros(1, 1, 4, 4))
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["keep.png"]


def test_tiff_palette_miniswhite_and_cmyk(tmp_path):
    import tifffile

    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[:, 1] = [65535, 0, 0]  # index 1 is red
    tifffile.imwrite(tmp_path / "pal.tif", np.array([[0, 1]], dtype=np.uint8), photometric="palette", colormap=colormap)
    pal = read_image(tmp_path / "pal.tif")
    assert pal.tensor.shape == (1, 3, 1, 2)
    assert pal.tensor[0, :, 0, 1].tolist() == [1.0, 0.0, 0.0] and pal.tensor[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]

    tifffile.imwrite(tmp_path / "white.tif", np.array([[0, 255]], dtype=np.uint8), photometric="miniswhite")
    assert read_image(tmp_path / "white.tif").tensor.flatten().tolist() == [1.0, 0.0]

    tifffile.imwrite(tmp_path / "cmyk.tif", np.zeros((4, 4, 4), dtype=np.uint8), photometric="separated")
    with pytest.raises(InputError, match="CMYK"):
        read_image(tmp_path / "cmyk.tif")
