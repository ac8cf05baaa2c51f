"""restorekit.weights: round trip, and a clear WeightsError for every kind of bad file."""

from __future__ import annotations

import json

import pytest
import torch

from restorekit.errors import WeightsError
from restorekit.weights import load_model, read_metadata, save_model, sidecar_path


def _net(hidden: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))


def _build(arch: dict) -> torch.nn.Module:
    return _net(arch["hidden"])


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    net = _net()
    path = save_model(net, tmp_path / "tiny.pt", arch={"hidden": 4},
                      metadata={"training_data": "none", "epochs": 3, "val_psnr_db": 12.5})
    return net, path


def test_round_trip_keeps_weights_and_metadata(saved):
    net, path = saved
    again, info = load_model(path, _build)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not again.training
    assert info["arch"] == {"hidden": 4}
    assert info["metadata"]["epochs"] == 3 and "created" in info["metadata"]
    assert len(info["sha256"]) == 64 and info["bytes"] == path.stat().st_size
    assert read_metadata(path)["sha256"] == info["sha256"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_missing_weights_file(saved):
    _, path = saved
    path.unlink()
    with pytest.raises(WeightsError, match=r"tiny\.pt is missing.*re-train"):
        load_model(path, _build)


def test_missing_sidecar(saved):
    _, path = saved
    sidecar_path(path).unlink()
    with pytest.raises(WeightsError, match=r"tiny\.json is missing"):
        load_model(path, _build)


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_model(path, _build)


def test_tampered_file_same_size(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_model(path, _build)


def test_other_architecture(saved):
    _, path = saved
    with pytest.raises(WeightsError, match="another architecture.*shape"):
        load_model(path, lambda arch: _net(8))
    with pytest.raises(WeightsError, match="another architecture.*missing"):
        load_model(path, lambda arch: torch.nn.Sequential(_net(4), torch.nn.Linear(2, 2)))


def test_unbuildable_arch_and_bad_sidecar(saved):
    _, path = saved
    with pytest.raises(WeightsError, match="cannot build"):
        load_model(path, lambda arch: _net(**arch, bogus=1))
    sidecar_path(path).write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable"):
        load_model(path, _build)
    sidecar_path(path).write_text(json.dumps({"arch": {}}))
    with pytest.raises(WeightsError, match="lacks 'sha256'"):
        load_model(path, _build)


def test_pickled_code_is_refused(tmp_path):
    """A file that is not a plain state dict fails the weights_only load even with a matching hash."""
    path = tmp_path / "evil.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a whole module object, not tensors
    import hashlib

    sidecar_path(path).write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                              "arch": {"hidden": 4}}))
    with pytest.raises(WeightsError, match="cannot be read as a state dict"):
        load_model(path, _build)


def test_name_must_end_in_pt(tmp_path):
    with pytest.raises(WeightsError, match=r"\.pt"):
        save_model(_net(), tmp_path / "model.bin", arch={})


def test_an_edited_arch_is_refused_before_anything_is_built(saved):
    """The checked hash covers 'arch': a sidecar edited to a huge network never reaches build()."""
    _, path = saved
    info = json.loads(sidecar_path(path).read_text())
    assert info["format"] == 2 and info["file_sha256"] != info["sha256"]
    info["arch"]["hidden"] = 10**9  # would allocate gigabytes if it were built
    sidecar_path(path).write_text(json.dumps(info))
    built = []
    with pytest.raises(WeightsError, match=r"edited after tiny\.pt was written.*'arch'.*nothing was built"):
        load_model(path, lambda arch: built.append(arch) or _build(arch))
    assert built == []


def test_an_edited_trained_for_is_refused(tmp_path):
    path = save_model(_net(), tmp_path / "g.pt", arch={"hidden": 4},
                      metadata={"trained_for": {"kernel_sha256": None, "noise_sigma_range": [0, 0.1],
                                                "tasks": ["denoise"]}})
    info = json.loads(sidecar_path(path).read_text())
    info["metadata"]["trained_for"]["noise_sigma_range"] = [0, 1]
    sidecar_path(path).write_text(json.dumps(info))
    with pytest.raises(WeightsError, match="trained_for"):
        load_model(path, _build)


def test_a_format_1_sidecar_with_a_wrong_arch_is_caught_on_the_meta_device(tmp_path):
    """Older sidecars hash the bytes only; the shapes are compared on 'meta' before a real build."""
    import hashlib

    path = tmp_path / "old.pt"
    torch.save(_net(4).state_dict(), path)
    sidecar_path(path).write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                              "arch": {"hidden": 10**7}}))
    real_builds = []

    def build(arch):
        if torch.empty(0).device.type != "meta":
            real_builds.append(arch)
        return _build(arch)

    with pytest.raises(WeightsError, match="another architecture"):
        load_model(path, build)
    assert real_builds == []


def test_messages_about_a_users_file_do_not_say_reinstall_or_weights_only_false(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)
    import hashlib

    sidecar_path(path).write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                              "arch": {"hidden": 4}}))
    for action in (lambda: load_model(path, _build), lambda: load_model(tmp_path / "absent.pt", _build)):
        with pytest.raises(WeightsError) as info:
            action()
        text = str(info.value)
        assert "reinstall" not in text and "weights_only=False" not in text and "re-export" in text


def test_shipped_weights_verify_and_keep_the_reinstall_advice(tmp_path):
    from restorekit.weights import is_shipped, verify
    from restorekit_plugins.dncnn.restorer import WEIGHTS_DIR

    for name in ("dncnn-color", "dncnn-gray"):
        info = verify(WEIGHTS_DIR / f"{name}.pt")
        assert info["format"] == 2 and info["metadata"]["trained_for"]["tasks"] == ["denoise"]
    assert is_shipped(WEIGHTS_DIR / "dncnn-color.pt") and not is_shipped(tmp_path / "x.pt")
    with pytest.raises(WeightsError, match="reinstall restorekit"):
        load_model(WEIGHTS_DIR / "no-such-model.pt", _build)
