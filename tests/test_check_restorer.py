"""restorekit.testing.check_restorer: every registered restorer passes it, and each check catches what it names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.cli.main import main
from restorekit.errors import InputError, RestorekitError
from restorekit.registry import default_registry
from restorekit.restorer import Param, Restorer
from restorekit.testing import RestorerCheckError, check_restorer, parametrize_with_checks
from restorekit.testing.restorers import RESTORER_CHECKS, run_restorer_checks

#: Restorers checked with a cheaper setting: the contract does not depend on an iteration count.
CHEAPER = {"pnp": {"iterations": 2}}
#: Restorers whose every call takes seconds even on a 24x24 image (BM3D: ~5 s per call here).
SLOW = {"bm3d"}


def _registered():
    """(restorer, check) for every registered restorer, bm3d's marked slow."""
    cases = []
    for name in default_registry().names():
        target = (name, CHEAPER[name]) if name in CHEAPER else name
        mark = parametrize_with_checks([target])
        for values, case_id in zip(mark.args[1], mark.kwargs["ids"]):
            cases.append(pytest.param(*values, id=case_id, marks=[pytest.mark.slow] if name in SLOW else []))
    return cases


@pytest.mark.parametrize("restorer, check", _registered())
def test_every_registered_restorer_passes_the_checks(restorer, check):
    check(restorer)


# --------------------------------------------------------------------------- the checks catch what they name
class Good(Restorer):
    name = "good"
    tasks = frozenset({"denoise"})
    params = (Param("strength", 1.0, "how much"),)

    def restore(self, image, degradation=None):
        return image.clamp(0, 1)


def _failed(cls, **params):
    return {r.check: r.detail for r in run_restorer_checks(cls, **params) if r.status == "failed"}


def test_a_good_restorer_passes_and_its_pytest_form_has_one_test_per_check():
    results = check_restorer(Good)
    assert [r.check for r in results] == [c.__name__ for c in RESTORER_CHECKS]
    assert all(r.passed for r in results)
    mark = parametrize_with_checks([Good, (Good, {"strength": 2.0})])
    assert mark.args[0] == "restorer, check"
    assert mark.kwargs["ids"][:2] == ["good-check_declared_params", "good-check_batched_nchw"]
    assert mark.kwargs["ids"][len(RESTORER_CHECKS)] == "good[strength=2.0]-check_declared_params"


@pytest.mark.parametrize(
    "restore, check, reason",
    [
        (lambda self, x, d: x.mul_(1).clamp_(0, 1), "check_input_not_modified", "changed in place"),
        (lambda self, x, d: (x + 0.01 * torch.from_numpy(np.random.default_rng().random(x.shape)).to(x.dtype)).clamp(0, 1),
         "check_same_seed_same_output", "draw random numbers from torch's generator"),
        (lambda self, x, d: x.clamp(0, 1) * (1 + 0.1 * torch.arange(x.shape[0]).view(-1, 1, 1, 1)) / 1.1,
         "check_batched_nchw", "restored alone"),
        (lambda self, x, d: x, "check_output_range", "declares output_range (0.0, 1.0)"),
        (lambda self, x, d: x.clamp(0, 1) if x.shape[-1] % 2 == 0 else x[..., :-1], "check_odd_non_square",
         "returned shape"),
        (lambda self, x, d: x.float().clamp(0, 1), "check_dtype_kept", "returned torch.float32 for a torch.float64"),
        (lambda self, x, d: x.clamp(0, 1) if x.shape[1] == 3 else x[:, 0], "check_gray", "returned shape"),
        (lambda self, x, d: x.clamp(0, 1) * d.sigma / d.sigma, "check_degradation_none", "AttributeError"),
    ],
    ids=["in-place", "unseeded", "batch-mixing", "range", "odd-size", "dtype", "gray", "needs-degradation"],
)
def test_each_check_catches_what_it_names(restore, check, reason):
    Broken = type("Broken", (Good,), {"restore": restore, "name": "broken"})
    failed = _failed(Broken)
    assert check in failed, failed
    if reason:
        assert reason in failed[check], failed[check]


def test_declarations_are_held_to():
    class GrayOnlyButTakesColour(Good):
        channels = (1,)

    class ClaimsToNeedDegradation(Good):
        needs_degradation = True

    class RefusesColourWithACrash(Good):
        channels = (1,)

        def restore(self, image, degradation=None):
            assert image.shape[1] == 1
            return image.clamp(0, 1)

    assert "restored 3 channel(s) without an error" in _failed(GrayOnlyButTakesColour)["check_colour"]
    assert "restored without a degradation" in _failed(ClaimsToNeedDegradation)["check_degradation_none"]
    assert "crashed instead of refusing" in _failed(RefusesColourWithACrash)["check_colour"]

    class GrayOnly(Good):
        channels = (1,)

        def restore(self, image, degradation=None):
            if image.shape[1] != 1:
                raise InputError("gray only; convert with image.mean(1, keepdim=True)")
            return image.clamp(0, 1)

    results = {r.check: r for r in check_restorer(GrayOnly)}
    assert results["check_colour"].status == "skipped" and "refused clearly" in results["check_colour"].detail


def test_a_bad_parameter_default_and_an_overridden_input_check_fail():
    class BadDefault(Good):
        params = (Param("levels", 3, "how many", parse=lambda v: int(v) + 1),)

    assert "parses to 4" in _failed(BadDefault)["check_declared_params"]

    class NoInputCheck(Good):
        def __call__(self, image, degradation=None):
            return self.restore(image, degradation)

    assert "was accepted" in _failed(NoInputCheck)["check_bad_input_raises"]


def test_check_restorer_lists_every_failed_check_by_name():
    class Unclipped(Good):
        def restore(self, image, degradation=None):
            return image.mul_(1.5)

    with pytest.raises(RestorerCheckError) as info:
        check_restorer(Unclipped)
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    failed = [r for r in info.value.results if not r.passed]
    assert message.startswith(f"{len(failed)} of {len(RESTORER_CHECKS)} restorer checks failed for 'good':")
    assert "\n  check_input_not_modified: " in message and "\n  check_output_range: " in message
    assert len(info.value.results) == len(RESTORER_CHECKS)


def test_unknown_names_and_checks_are_clear_errors():
    with pytest.raises(RestorekitError, match="no restorer named 'wienr'; did you mean 'wiener'"):
        check_restorer("wienr")
    with pytest.raises(RestorekitError, match="no restorer check named 'grey'"):
        check_restorer(Good, checks=["grey"])


def test_the_check_command(capsys):
    assert main(["check", "wiener", "--param", "snr=auto", "--check", "gray", "--check", "check_degradation_none"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "wiener[snr=auto]:"
    assert "  PASS check_gray" in out and "  PASS check_degradation_none  refused clearly" in out
    assert out.rstrip().endswith("all checks passed")
    assert main(["check", "wienr"]) == 2
    assert "no restorer named 'wienr'" in capsys.readouterr().err
    assert main(["check", "wiener", "--param", "nope=1"]) == 2
    assert main(["check"]) == 2


def test_the_check_command_exits_1_when_a_check_fails(capsys):
    # clip=false: Wiener returns its linear estimate and promises no range, so the range check is skipped.
    assert main(["check", "wiener", "--param", "clip=false", "--check", "output_range"]) == 0
    assert "SKIP check_output_range" in capsys.readouterr().out

    class Leaky(Good):
        name = "leaky-check-test"

        def restore(self, image, degradation=None):
            return image

    from types import SimpleNamespace

    from restorekit import hookimpl

    @hookimpl
    def register_restorers(register):
        register(Leaky)

    registry = default_registry()
    registry.add_plugin(SimpleNamespace(register_restorers=register_restorers), name="check-test")
    try:
        assert main(["check", "leaky-check-test", "--check", "output_range", "--check", "gray"]) == 1
    finally:
        registry.remove_plugin("check-test")
    out = capsys.readouterr().out
    assert "  FAIL check_output_range  declares output_range (0.0, 1.0) but returned values in" in out
    assert "  PASS check_gray" in out and out.rstrip().endswith("1 check failed")
