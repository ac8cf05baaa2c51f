"""The benchmark harness: same seeded input for every method, measured scores and times, skips with reasons."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from restorekit import Param, RestorerSpec, hookimpl
from restorekit.bench import parse_method, parse_sigmas, run_benchmark
from restorekit.degrade import Noise
from restorekit.errors import InputError, ParameterError, UnknownRestorerError, WeightsError
from restorekit.metrics import psnr
from restorekit.registry import Registry
from restorekit.restorer import Restorer

SEEN: dict[str, list[torch.Tensor]] = {}


class _Recorder(Restorer):
    """Returns its input clipped to [0, 1] and remembers what it was given."""

    name = "recorder"
    tasks = frozenset({"denoise", "deblur", "inpaint"})
    params = (Param("tag", "a", "where to record"),)

    def restore(self, image, degradation=None):
        SEEN.setdefault(self.config["tag"], []).append(image.clone())
        return image.clamp(0, 1)


class _Slow(Restorer):
    """Sleeps ``delay`` seconds per call, and ``first`` extra seconds on its first call."""

    name = "slow"
    tasks = frozenset({"denoise"})
    params = (Param("delay", 0.05, ""), Param("first", 0.0, ""))

    def __init__(self, **params):
        super().__init__(**params)
        self.calls = 0

    def restore(self, image, degradation=None):
        time.sleep(self.config["delay"] + (self.config["first"] if self.calls == 0 else 0.0))
        self.calls += 1
        return image.clamp(0, 1)


class _Picky(Restorer):
    """Refuses any image whose first pixel is above 0.5."""

    name = "picky"
    tasks = frozenset({"denoise"})

    def restore(self, image, degradation=None):
        if image.shape[-1] > 64 and float(image[0, 0, 0, 0]) > 0.5:
            raise InputError("this image is too bright")
        return image.clamp(0, 1)


def _no_weights(**params):
    raise WeightsError("weights file x.pt is missing; train it first")


class _Plugin:
    @hookimpl
    def register_restorers(self, register):
        register(_Recorder)
        register(_Slow)
        register(_Picky)
        register(RestorerSpec(name="heavy", tasks={"denoise"}, factory=_no_weights))
        register(RestorerSpec(name="blurry-only", tasks={"deblur"}, factory=_Recorder))


@pytest.fixture()
def registry():
    SEEN.clear()
    reg = Registry()
    reg.add_plugin(_Plugin(), name="bench-test")
    return reg


def _images(n=3, size=72, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)


def test_parse_method_and_sigmas():
    assert parse_method("wiener") == ("wiener", {})
    assert parse_method("wiener+unet:wiener.snr=50:clip=false") == ("wiener+unet", {"wiener.snr": "50", "clip": "false"})
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        parse_method("wiener:snr")
    assert parse_sigmas("0.05, 0.1", "denoise") == (0.05, 0.1)
    assert parse_sigmas(None, "deblur") == (0.005, 0.01, 0.02)
    with pytest.raises(InputError, match="0-255 scale"):
        parse_sigmas([25], "denoise")
    with pytest.raises(InputError, match=">= 0"):
        parse_sigmas("-0.1", "denoise")


def test_every_method_sees_the_same_seeded_input(registry):
    x = _images()
    result = run_benchmark(x, "denoise", ["recorder:tag=a", "recorder:tag=b"], sigmas=[0.1, 0.2], seed=7,
                           progress=False, registry=registry)
    assert len(SEEN["a"]) == len(SEEN["b"]) == 3 * 2 + 1  # + one warm-up crop each
    for ya, yb in zip(SEEN["a"][1:], SEEN["b"][1:]):
        assert torch.equal(ya, yb)
    # image i at sigma s is Noise(s) drawn from seed + i
    expected = Noise(0.2).apply(x[2:3], seed=7 + 2)
    assert torch.equal(SEEN["a"][-1], expected)
    assert [(r.method, r.sigma, r.images) for r in result.rows] == [
        ("recorder:tag=a", 0.1, 3), ("recorder:tag=b", 0.1, 3), ("recorder:tag=a", 0.2, 3), ("recorder:tag=b", 0.2, 3)]


def test_scores_are_the_per_image_means(registry):
    x = _images()
    result = run_benchmark(x, "denoise", ["recorder"], sigmas=[0.1], seed=0, progress=False, registry=registry)
    per_image = [psnr(Noise(0.1).apply(x[i : i + 1], seed=i).clamp(0, 1), x[i : i + 1]) for i in range(3)]
    row = result.row("recorder", 0.1)
    assert math.isclose(row.psnr, sum(per_image) / 3, rel_tol=1e-6)
    # the clipped identity scores exactly like the clipped degraded input
    assert math.isclose(result.baseline[0].psnr, row.psnr, rel_tol=1e-9)
    assert 0 < row.ssim < 1
    assert [r["image"] for r in result.records] == ["image0", "image1", "image2"]


def test_seconds_per_image_are_measured_without_the_warm_up(registry):
    result = run_benchmark(_images(2, size=32), "denoise", ["slow:delay=0.05:first=0.5"], sigmas=[0.1],
                           progress=False, registry=registry)
    seconds = result.rows[0].seconds
    assert 0.05 <= seconds < 0.4


def test_unavailable_methods_are_skipped_with_the_reason(registry):
    result = run_benchmark(_images(2), "denoise", ["recorder", "heavy", "blurry-only"], sigmas=[0.1],
                           progress=False, registry=registry)
    assert result.methods() == ["recorder"]
    reasons = {k.method: k.reason for k in result.skipped}
    assert "missing" in reasons["heavy"]
    assert "not denoise" in reasons["blurry-only"]
    assert "Not run: heavy" in result.to_markdown()


def test_a_method_failing_on_one_image_is_left_out_entirely(registry):
    x = _images(3, size=80)
    x[1, :, 0, 0] = 0.9
    x[0, :, 0, 0] = 0.1
    x[2, :, 0, 0] = 0.1
    result = run_benchmark(x, "denoise", ["picky", "recorder"], sigmas=[0.0], progress=False, registry=registry)
    assert result.methods() == ["recorder"]
    assert not [r for r in result.records if r["method"] == "picky"]
    assert any(k.method == "picky" and "image1" in k.reason and "too bright" in k.reason for k in result.skipped)


def test_unknown_method_and_bad_settings_are_errors(registry):
    x = _images(1)
    with pytest.raises(UnknownRestorerError, match="recorder"):
        run_benchmark(x, "denoise", ["recordr"], progress=False, registry=registry)
    with pytest.raises(ParameterError, match="only used by --task deblur"):
        run_benchmark(x, "denoise", ["recorder"], kernel="course", progress=False, registry=registry)
    with pytest.raises(ParameterError, match="unknown task"):
        run_benchmark(x, "sharpen", ["recorder"], progress=False, registry=registry)
    with pytest.raises(ParameterError, match="twice"):
        run_benchmark(x, "denoise", ["recorder", "recorder"], progress=False, registry=registry)
    with pytest.raises(InputError, match="mask"):
        run_benchmark(x, "inpaint", ["recorder"], mask="stripes", progress=False, registry=registry)


def test_inpaint_default_mask_is_the_lower_half(registry):
    x = _images(1, size=32)
    result = run_benchmark(x, "inpaint", ["recorder"], progress=False, registry=registry, keep=1)
    degraded = result.examples[0].degraded
    assert result.rows[0].sigma == 0.0
    assert torch.all(degraded[..., 16:, :] == 0) and torch.equal(degraded[..., :16, :], x[..., :16, :])
    rnd = run_benchmark(x, "inpaint", ["recorder"], mask="random:0.5", progress=False, registry=registry, keep=1)
    missing = float((rnd.examples[0].degraded == 0).float().mean())
    assert 0.35 < missing < 0.65


def test_wiener_auto_beats_snr_100_in_a_deblur_bench():
    from skimage import data, transform

    img = transform.resize(data.astronaut()[50:350, 100:400], (96, 96), anti_aliasing=True)
    x = torch.from_numpy(img).float().permute(2, 0, 1)[None]
    result = run_benchmark(x, "deblur", ["wiener", "wiener:snr=auto"], sigmas=[0.02], progress=False)
    assert result.settings["kernel"] == "course"
    assert result.row("wiener:snr=auto", 0.02).psnr > result.row("wiener", 0.02).psnr
    assert result.row("wiener", 0.02).psnr > 0


def test_folder_input_limit_and_outputs(registry, tmp_path):
    from restorekit.imageio import write_image

    folder = tmp_path / "clean"
    folder.mkdir()
    for i, name in enumerate(["c.png", "a.png", "b.png"]):
        write_image(folder / name, _images(1, size=40, seed=i)[0:1])
    result = run_benchmark(folder, "denoise", ["recorder"], sigmas="0.05,0.1", limit=2, progress=False,
                           registry=registry)
    assert result.settings["image_names"] == ["a.png", "b.png"]
    assert result.settings["images"] == 2 and result.settings["machine"]["cpu"]

    md = result.write_markdown(tmp_path / "t.md").read_text()
    assert "| 0.05 | (degraded input) |" in md and "| 0.1 | recorder |" in md
    data = json.loads(result.write_json(tmp_path / "t.json").read_text())
    assert {r["method"] for r in data["rows"]} == {"recorder"} and len(data["records"]) == 4
    fig = result.figure(tmp_path / "t.png")
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "t.json", "t.md", "t.png"]  # no temp files left


# --------------------------------------------------------------------------- kernel sets
def test_kernel_set_runs_each_kernel_and_reports_the_mean(registry):
    from restorekit.bench_kernels import run_kernel_set

    x = _images(n=2, size=40)
    result = run_kernel_set(x, "deblur", "gauss:1.0,box:3", ["recorder"], sigmas=[0.01, 0.02], progress=False,
                            registry=registry)
    assert result.kernels == ["gauss:1.0", "box:3"]
    for label, one in zip(result.kernels, result.results):  # each kernel is the plain benchmark with that kernel
        alone = run_benchmark(x, "deblur", ["recorder"], sigmas=[0.01, 0.02], kernel=label, progress=False,
                              registry=registry)
        assert one.row("recorder", 0.01).psnr == pytest.approx(alone.row("recorder", 0.01).psnr)
    for sigma in (0.01, 0.02):
        per = [r.row("recorder", sigma).psnr for r in result.results]
        assert per[0] != per[1]
        assert result.mean.row("recorder", sigma).psnr == pytest.approx(sum(per) / 2)
    table = result.to_markdown()
    assert "| sigma | method | gauss:1.0 | box:3 | mean PSNR |" in table
    report = json.loads(result.to_json())
    assert report["kernels"] == ["gauss:1.0", "box:3"]
    assert set(report["per_kernel"]) == {"gauss:1.0", "box:3"}
    assert report["mean"]["rows"][0]["psnr"] == pytest.approx(result.mean.rows[0].psnr)
    assert {r["kernel"] for r in report["records"]} == {"gauss:1.0", "box:3"}


def test_run_benchmark_points_a_kernel_set_to_run_kernel_set(registry):
    with pytest.raises(ParameterError, match="run_kernel_set"):
        run_benchmark(_images(n=1), "deblur", ["recorder"], kernel="box:3,box:5", progress=False, registry=registry)


def test_bench_cli_kernel_set_prints_each_kernel_and_the_mean(tmp_path, capsys):
    from restorekit.cli.main import main
    from restorekit.imageio import write_image

    data = tmp_path / "data"
    data.mkdir()
    write_image(data / "a.png", _images(n=1, size=40)[0])
    code = main(["bench", "--data", str(data), "--task", "deblur", "--kernel", "gauss:1.0,box:3", "--methods",
                 "wiener", "--sigmas", "0.01", "--no-progress", "--json", str(tmp_path / "k.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| gauss:1.0 | box:3 | mean PSNR |" in out and "| 0.01 | wiener |" in out
    assert json.loads((tmp_path / "k.json").read_text())["kernels"] == ["gauss:1.0", "box:3"]


def test_bench_kernel_is_refused_for_tasks_without_one(registry):
    with pytest.raises(ParameterError, match="only used by --task deblur or superresolve"):
        run_benchmark(_images(n=1), "denoise", ["recorder"], kernel="box:3", progress=False, registry=registry)
