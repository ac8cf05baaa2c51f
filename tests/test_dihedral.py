"""The dihedral transforms and the learned denoisers' self-ensemble (``ensemble=N``)."""

import pytest
import torch

from restorekit import dihedral
from restorekit.degrade import Noise
from restorekit.errors import ParameterError
from restorekit.registry import default_registry


def test_each_transform_is_undone_and_the_eight_differ():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    outs = [dihedral.transform(x, i) for i in range(dihedral.COUNT)]
    assert len({tuple(o.flatten().tolist()) + tuple(o.shape) for o in outs}) == 8
    for i, o in enumerate(outs):
        assert torch.equal(dihedral.untransform(o, i), x)


def test_average_takes_the_mean_over_the_subset_and_moves_maps_with_the_image():
    x = torch.rand(2, 1, 5, 7)
    corner = lambda t: t * 0 + t[..., :1, :1]  # noqa: E731  (not equivariant: reads one corner)
    for size, subset in dihedral.SUBSETS.items():
        expect = sum(dihedral.untransform(corner(dihedral.transform(x, i)), i) for i in subset) / len(subset)
        assert torch.allclose(dihedral.average(corner, x, size), expect)
    sigma_map = torch.rand(2, 1, 5, 7)
    seen = dihedral.average(lambda t, m: m, x, 8, sigma_map)  # a map is transformed with the image
    assert torch.allclose(seen, sigma_map)
    levels = torch.tensor([0.1, 0.2])  # one level per image is passed as it is
    assert torch.allclose(dihedral.average(lambda t, s: t * s.reshape(-1, 1, 1, 1), x, 4, levels),
                          x * levels.reshape(-1, 1, 1, 1))
    with pytest.raises(ValueError, match="one of"):
        dihedral.average(corner, x, 3)


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def test_drunet_ensemble_averages_the_transformed_restorations(registry):
    torch.manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(1, 3, 24, 40)  # away from 0 and 1: clipping each output is clipping the mean
    y = x + 0.05 * torch.randn_like(x)
    plain = registry.create("drunet", low_noise_guard="off")
    outs = [dihedral.untransform(plain.restore(dihedral.transform(y, i), Noise(0.1)), i) for i in (0, 4)]
    two = registry.create("drunet", ensemble=2, low_noise_guard="off").restore(y, Noise(0.1))
    assert torch.allclose(two, (outs[0] + outs[1]).div(2).clamp(0, 1), atol=1e-4)
    assert not torch.allclose(two, outs[0], atol=1e-4)  # the network is not exactly flip-equivariant
    assert torch.equal(registry.create("drunet", ensemble=1).restore(y, Noise(0.1)), plain.restore(y, Noise(0.1)))


def test_training_forward_ignores_the_ensemble(registry):
    x = torch.rand(2, 3, 16, 16)
    one = registry.create("drunet")
    eight = registry.create("drunet", ensemble=8)
    with torch.no_grad():
        assert torch.equal(one.forward(x, Noise(0.05)), eight.forward(x, Noise(0.05)))


def test_a_bad_ensemble_size_is_refused_in_one_line(registry):
    with pytest.raises(ParameterError, match="ensemble.*one of 1, 2, 4, 8"):
        registry.create("ffdnet", ensemble=3)
