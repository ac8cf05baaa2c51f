"""Parameters that validate themselves: strict types, bounds, choices, NaN, and declarations checked at registration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from restorekit import Param, RestorerSpec, hookimpl
from restorekit.errors import ParameterError
from restorekit.registry import Registry
from restorekit.restorer import Restorer, resolve_params


@pytest.mark.parametrize("value, expected", [(3, 3), ("3", 3), (" -2 ", -2), ("+7", 7)])
def test_int_parameters_parse_integers_and_integer_text(value, expected):
    got = Param("n", 1).convert(value)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value, reason", [
    (2.5, "must be an integer, not the float 2.5"),
    (3.0, "must be an integer, not the float 3.0"),
    ("2.5", "must be an integer such as 3"),
    (True, "must be an integer, not a bool"),
    (None, "must be an integer, not a NoneType"),
])
def test_int_parameters_refuse_what_is_not_an_integer(value, reason):
    with pytest.raises(ParameterError, match=rf"parameter 'n' of 'tv' got .*: {reason}.*Default is 1\."):
        Param("n", 1).convert(value, "tv")


def test_float_parameters_take_numbers_and_refuse_bools_and_nan():
    p = Param("h", 0.5)
    assert p.convert(2) == 2.0 and type(p.convert(2)) is float
    assert p.convert("0.25") == 0.25
    for bad, reason in [(True, "not a bool"), ("nan", "not NaN"), (float("nan"), "not NaN"), ("x", "such as 0.5"),
                        ("inf", "finite"), (1e9, "ceiling")]:
        with pytest.raises(ParameterError, match=reason):
            p.convert(bad)
    assert math.isnan(Param("h", 0.5, allow_nan=True).convert("nan"))


def test_str_parameters_take_text_and_paths_only():
    p = Param("weights", "model")
    assert p.convert(Path("/tmp/w.pt")) == "/tmp/w.pt"
    with pytest.raises(ParameterError, match="must be a string, not a int"):
        p.convert(5)


def test_bool_parameters_parse_words():
    p = Param("clip", True)
    assert p.convert("false") is False and p.convert("Yes") is True
    with pytest.raises(ParameterError, match="must be true or false"):
        p.convert("maybe")


@pytest.mark.parametrize("closed, allowed, refused", [
    ("both", [1, 10], [0, 11]),
    ("left", [1, 9], [0, 10]),
    ("right", [2, 10], [1, 11]),
    ("neither", [2, 9], [1, 10]),
])
def test_bounds_with_each_kind_of_closure(closed, allowed, refused):
    p = Param("n", 5, low=1, high=10, closed=closed)
    for value in allowed:
        assert p.convert(value) == value
    for value in refused:
        with pytest.raises(ParameterError, match=f"got {value}: must be {p.range_text()}"):
            p.convert(value)


def test_bounds_apply_after_a_custom_parser_and_only_to_numbers():
    from restorekit.restorer import float_or_auto

    p = Param("snr", 10.0, parse=float_or_auto, high=1000.0)
    assert p.convert("auto") == "auto" and p.convert("50") == 50.0
    with pytest.raises(ParameterError, match="must be <= 1000.0"):
        p.convert("5000")


def test_choices_short_and_long_and_lazy():
    assert Param("mode", "soft", choices=["soft", "hard"]).choices == ("soft", "hard")
    with pytest.raises(ParameterError, match="choose one of 'soft', 'hard'"):
        Param("mode", "soft", choices=("soft", "hard")).convert("medium")
    calls = []

    def names():
        calls.append(1)
        return [f"db{i}" for i in range(1, 39)]

    lazy = Param("wavelet", "db1", choices=names)
    assert lazy.problems() == [] and calls == []  # registration does not call it
    assert lazy.convert("db4") == "db4"
    with pytest.raises(ParameterError, match=r"choose one of its 38 values \(closest: db9.*restorekit list --json"):
        lazy.convert("db99")
    assert lazy.describe()["choices"][:2] == ["db1", "db2"] and len(calls) == 1  # called once, cached


def test_describe_carries_type_bounds_and_choices():
    assert Param("n", 5, "help", low=1).describe() == {
        "name": "n", "default": 5, "type": "int", "help": "help", "low": 1, "closed": "both"}
    assert Param("h", 0.5, high=1.0, closed="right").describe()["allow_nan"] is False
    assert Param("m", "a", choices=("a", "b")).describe()["choices"] == ["a", "b"]
    from restorekit.restorer import float_or_auto

    assert Param("snr", "auto", parse=float_or_auto).describe()["type"] == "float_or_auto"


@pytest.mark.parametrize("param, problem", [
    (Param("n", -1, low=0), "its default -1 is not allowed: must be >= 0"),
    (Param("n", 10, high=10, closed="left"), "its default 10 is not allowed: must be < 10"),
    (Param("m", "x", choices=("a", "b")), "its default 'x' is not allowed: choose one of 'a', 'b'"),
    (Param("h", float("nan")), "its default nan is not allowed: must be a number, not NaN"),
    (Param("n", 1, low=5, high=2), "low=5 is above high=2"),
    (Param("n", 1, closed="open"), "closed='open' must be one of both, left, right, neither"),
    (Param("s", "a", low=1), "bounds apply to numbers"),
    (Param("m", "a", choices=()), "choices must not be empty"),
    (Param("a.b", 1), "without spaces, '=' or '.'"),
])
def test_bad_declarations_are_reported(param, problem):
    assert any(problem in p for p in param.problems()), param.problems()


class Bad(Restorer):
    name = "bad"
    tasks = frozenset({"denoise"})
    params = (Param("n", 3, low=1), Param("n", 4), Param("level", 11, low=0, high=10))

    def restore(self, image, degradation=None):
        return image


class Good(Bad):
    name = "good"
    params = (Param("n", 3, low=1),)


def test_bad_declarations_fail_the_plugin_naming_the_parameter_and_spare_the_rest():
    class Plugin:
        @hookimpl
        def register_restorers(self, register):
            register(Bad)
            register(Good)

    reg = Registry(entry_points=False, strict=False)
    reg.add_plugin(Plugin(), name="params-plugin")
    assert reg.names() == ["good"]
    (failure,) = reg.failures
    assert failure.plugin == "params-plugin" and failure.target == "restorer 'bad'"
    assert "parameter 'n' declared more than once" in failure.error
    assert "parameter 'level': its default 11 is not allowed: must be >= 0 and <= 10" in failure.error
    with pytest.raises(ParameterError, match="'n' of 'good' got 0: must be >= 1"):
        reg.create("good", n=0)
    assert reg.create("good", n="7").config["n"] == 7


def test_resolve_params_converts_given_values_and_keeps_defaults():
    params = (Param("n", 3, low=1), Param("mode", "a", choices=("a", "b")))
    assert resolve_params(params, {"n": "5"}, "x") == {"n": 5, "mode": "a"}
    with pytest.raises(ParameterError, match="unknown parameter 'z' of 'x'; it takes: mode, n"):
        resolve_params(params, {"z": 1}, "x")


def test_a_spec_checks_its_params_too():
    spec = RestorerSpec(name="s", tasks={"denoise"}, params=(Param("k", 0, low=1),), factory=Good)
    assert spec.problems() == ["parameter 'k': its default 0 is not allowed: must be >= 1"]
