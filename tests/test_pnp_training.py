"""Training a denoiser through pnp's solver: ``PnPRestorer.forward``, masked and mixed samplers, tuned weights.

The prior pnp runs is the network ``fit`` trains: ``restorekit train drunet
--pnp-share S`` masks a share of the batches and restores them with pnp's own
inpainting solver (the gradient through its last iterations), so what is
trained is exactly what ``restore`` runs; pnp then uses such weights for the
task they were trained through (``tuned``).
"""

from __future__ import annotations

import json

import pytest
import torch

import restorekit
from restorekit.degrade import DegradationSampler, Mask, Noise, SamplerMixture
from restorekit.errors import InputError
from restorekit_plugins.drunet.model import DRUNet
from restorekit_plugins.drunet.restorer import DRUNetRestorer
from restorekit_plugins.pnp.restorer import PnPRestorer


def _tiny_net(seed: int = 0) -> DRUNet:
    torch.manual_seed(seed)
    net = DRUNet(channels=3, widths=(4, 4, 8, 8), blocks=1)
    for p in net.parameters():  # far from the identity, so the solver's output depends on the network
        torch.nn.init.normal_(p, std=0.05)
    return net


def _inpainting(seed: int = 0, missing: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 24, 24, generator=g)
    mask = Mask((torch.rand(2, 1, 24, 24, generator=g) >= missing).float())
    return x, mask.apply(x), mask


def test_forward_is_what_restore_runs_and_trains_the_network():
    net = _tiny_net()
    pnp = PnPRestorer(progress=False).with_denoiser(DRUNetRestorer.from_network(net, low_noise_guard="off"))
    _, y, mask = _inpainting()
    restored = pnp(y, mask)
    trained = pnp.forward(y, mask)
    assert trained.requires_grad
    assert torch.allclose(trained.clamp(0, 1), restored, atol=1e-5)
    trained.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert float(net.tail.weight.grad.abs().sum()) > 0


def test_the_gradient_flows_through_the_last_iterations_only():
    net = _tiny_net()
    pnp = PnPRestorer(progress=False).with_denoiser(DRUNetRestorer.from_network(net, low_noise_guard="off"))
    _, y, mask = _inpainting()
    pnp.backprop_iterations = 0
    assert not pnp.forward(y, mask).requires_grad  # no iteration with the gradient: nothing to train
    pnp.backprop_iterations = 1
    one = torch.autograd.grad(pnp.forward(y, mask).sum(), net.tail.weight)[0]
    pnp.backprop_iterations = 8
    eight = torch.autograd.grad(pnp.forward(y, mask).sum(), net.tail.weight)[0]
    assert not torch.allclose(one, eight)  # more iterations carry more of the gradient


def test_forward_on_noise_alone_is_the_denoisers_own_forward():
    net = _tiny_net()
    denoiser = DRUNetRestorer.from_network(net)
    pnp = PnPRestorer(progress=False).with_denoiser(denoiser)
    y = torch.rand(2, 3, 16, 16)
    noise = Noise(torch.tensor([0.05, 0.1], dtype=torch.float64))
    assert torch.equal(pnp.forward(y, noise), denoiser.forward(y, noise))
    assert pnp.net is net


def test_a_sampler_draws_each_samples_missing_fraction_in_a_range():
    sampler = DegradationSampler(mask="random:0.5-0.9")
    x = torch.rand(64, 3, 32, 32)
    y, degradation = sampler(x, torch.Generator().manual_seed(0))
    missing = 1 - degradation.mask.float().mean(dim=(1, 2, 3))
    assert float(missing.min()) > 0.4 and float(missing.max()) < 0.97
    assert float(missing.std()) > 0.05  # drawn per sample, not one fraction for all
    assert torch.equal(y, x * degradation.mask)  # the missing pixels zeroed, the rest kept
    assert sampler.trained_for["mask"] == "random:0.5-0.9" and sampler.tasks == ["inpaint"]
    for bad in ("random:0.9-0.5", "random:0.5-1.2", "random:a-b", "holes:0.5"):
        with pytest.raises(InputError, match="mask"):
            DegradationSampler(mask=bad)


def test_a_mixture_draws_one_part_per_batch_with_its_share():
    noise = DegradationSampler(sigma_range=(0.0, 0.2), low_fraction=0.1, low_sigma=0.01)
    masks = DegradationSampler(mask="random:0.5-0.9")
    mixture = SamplerMixture([(3, noise), (1, masks)])
    g = torch.Generator().manual_seed(1)
    kinds = [type(mixture(torch.rand(2, 3, 8, 8), g)[1]).__name__ for _ in range(400)]
    assert 0.2 < kinds.count("Mask") / 400 < 0.3 and kinds.count("Noise") + kinds.count("Mask") == 400
    again = [type(mixture(torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(1))[1]).__name__]
    assert again[0] == kinds[0]  # the generator decides: a resumed step draws the same
    found = mixture.trained_for
    assert found["tasks"] == ["denoise", "inpaint"] and found["noise_sigma_range"] == [0.0, 0.2]
    assert found["low_noise_share"] == 0.1 and [p["share"] for p in found["mixture"]] == [0.75, 0.25]
    with pytest.raises(InputError, match="shares"):
        SamplerMixture([(0, noise)])
    with pytest.raises(InputError, match="pairs"):
        SamplerMixture([(1, "noise")])


def test_a_drunet_run_through_pnp_trains_and_ships(tmp_path):
    from restorekit.imageio import write_image
    from restorekit_plugins.drunet import train

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", torch.rand(1, 3, 40, 40))
    shipped = tmp_path / "w.pt"
    args = ["--data", str(folder), "--gray-fraction", "0", "--widths", "4,4,8,8", "--blocks", "1", "--patch", "16",
            "--crops-per-epoch", "8", "--batch-size", "2", "--epochs", "1", "--val-crop", "16", "--no-progress",
            "--pnp-share", "0.5", "--pnp-mask", "random:0.6-0.8", "--out", str(tmp_path / "run"),
            "--export", str(shipped)]
    assert train.run_request.main(args) == 0
    meta = json.loads(shipped.with_suffix(".json").read_text())["metadata"]
    assert "pnp's inpainting solver" in meta["trained_through_pnp"]
    assert meta["trained_for"]["tasks"] == ["denoise", "inpaint"]
    assert meta["options"]["pnp_share"] == 0.5
    built = restorekit.create("drunet", weights=str(shipped))
    assert built(torch.rand(1, 3, 20, 20), Noise(0.05)).shape == (1, 3, 20, 20)


def test_init_from_takes_shipped_weights_by_name():
    from restorekit_plugins.drunet import train

    net = DRUNet(channels=3, widths=(16, 32, 64, 128), blocks=4)
    said = train.initialize_from(net, "drunet-color")
    assert said == "drunet-color (shipped weights)"  # no path of this machine in a sidecar
    shipped = restorekit.create("drunet").net
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), shipped.state_dict().values()))


def test_pnp_uses_the_denoisers_weights_tuned_for_the_task(monkeypatch):
    from restorekit.degrade import Blur

    monkeypatch.setattr(DRUNetRestorer, "pnp_weights", {"inpaint": "drunet-color"}, raising=False)
    pnp = restorekit.create("pnp", progress=False)
    cpu = torch.device("cpu")
    assert pnp.tuned_weights("inpaint") == "drunet-color" and pnp.tuned_weights("deblur") is None
    tuned = pnp.denoiser_for(cpu, "inpaint")
    assert tuned is not pnp.denoiser and tuned.config["weights"] == "drunet-color"
    assert tuned.config["low_noise_guard"] == "off"  # built as pnp builds its denoiser
    assert pnp.denoiser_for(cpu, "inpaint") is tuned and pnp.denoiser_for(cpu, "deblur") is pnp.denoiser
    plain = restorekit.create("pnp", progress=False, tuned=False)
    assert plain.tuned_weights("inpaint") is None and plain.denoiser_for(cpu, "inpaint") is plain.denoiser
    assert plain(torch.rand(1, 3, 16, 16), Blur(torch.ones(3, 3) / 9)).shape == (1, 3, 16, 16)
    handed = restorekit.create("pnp", progress=False).with_denoiser(DRUNetRestorer.from_network(DRUNet()))
    assert handed.tuned_weights("inpaint") is None  # a denoiser handed in serves every task as it is


def test_the_default_pnp_fills_in_with_drunet_trained_through_pnp():
    from restorekit.weights import verify

    from restorekit_plugins.drunet.restorer import WEIGHTS_DIR

    pnp = restorekit.create("pnp", progress=False)
    assert pnp.tuned_weights("inpaint") == "drunet-color-pnp" and pnp.tuned_weights("superresolve") is None
    info = verify(WEIGHTS_DIR / "drunet-color-pnp.pt")  # shipped, its SHA-256 checked
    meta = info["metadata"]
    assert meta["options"]["pnp_share"] > 0 and "inpaint" in meta["trained_for"]["tasks"]
    x, y, mask = _inpainting(3, missing=0.8)
    tuned = pnp(y, mask)
    plain = restorekit.create("pnp", progress=False, tuned=False)(y, mask)
    assert not torch.equal(tuned, plain)  # the tuned weights are what ran
