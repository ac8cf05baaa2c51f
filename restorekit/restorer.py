"""The Restorer interface, its parameters, and pipelines of restorers.

Every method in restorekit, classical or learned, built-in or third-party, is
a :class:`Restorer`: it has a name, the tasks it handles (``"denoise"``,
``"deblur"``, ``"inpaint"``, ``"superresolve"``), typed parameters with defaults, and
``restore(image, degradation)`` working on batched ``N, C, H, W`` float
tensors with values in [0, 1]. A :class:`Pipeline` chains restorers and is
itself a restorer.

This module imports no torch at import time so that ``restorekit list`` and
``restorekit --help`` stay quick.
"""

from __future__ import annotations

import abc
import importlib
import math
import numbers
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping, Sequence

from .checks import check_batch  # re-exported: restorekit.restorer.check_batch stays importable
from .checks import check_unit_range
from .isolation import plugin_code
from .errors import ParameterError, RestorekitError, RestorerFailedError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .degrade import Degradation

TASKS = ("denoise", "deblur", "inpaint", "superresolve")


# --------------------------------------------------------------------------- parameters
def float_or_auto(value: Any) -> float | str:
    """Parse a positive float or the word ``"auto"`` (used by Wiener's ``snr``)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive finite number or 'auto'")
    return number


def parse_bool(value: Any) -> bool:
    """Parse ``true/false/1/0/yes/no`` (case-insensitive) or a Python bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


#: How a bounded parameter treats its bounds (as in scikit-learn's ``Interval``).
CLOSED = ("both", "left", "right", "neither")
#: The ceiling of a numeric value whose :class:`Param` declares no ``high``: a safety net only,
#: so that ``iterations=1e9`` cannot exhaust memory or time; declare the real bound with ``high``.
DEFAULT_HIGH = 1e6


def _parse_int(value: Any) -> int:
    """An integer from an int (not a bool) or an integer literal such as ``"3"``; 2.5 and 3.0 are refused."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a bool")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError("must be an integer such as 3") from None
    if isinstance(value, numbers.Real):
        raise ValueError(f"must be an integer, not the {type(value).__name__} {value!r}; give a whole number such as 3")
    raise TypeError(f"must be an integer, not a {type(value).__name__}")


def _parse_float(value: Any) -> float:
    """A float from a real number (not a bool) or a numeric string such as ``"0.5"``."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a bool")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError("must be a number such as 0.5") from None
    raise TypeError(f"must be a number, not a {type(value).__name__}")


def _parse_str(value: Any) -> str:
    """A string from a string or a path; numbers and other objects are refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"must be a string, not a {type(value).__name__}")


_PARSERS: dict[type, Callable[[Any], Any]] = {bool: parse_bool, int: _parse_int, float: _parse_float, str: _parse_str}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Param:
    """One parameter of a restorer, with its type, optional bounds and choices.

    Parameters
    ----------
    name : str
        The keyword a user passes (``--param name=value`` on the command line).
    default : object
        The value used when none is given; also fixes the type when
        ``parse`` is not given: a bool, int, float or str default makes the
        parameter strictly that type (2.5 is refused for an int, ``True``
        is not an int, ``"3"`` from the command line still parses to 3).
    help : str
        One line shown by ``restorekit list``.
    parse : callable, optional
        Turns a string or Python value into the parameter's value; raises
        ``ValueError`` with a short reason for a bad value. Bounds and
        choices are checked on what it returns.
    choices : iterable or callable, optional
        The allowed values, checked after parsing. A callable taking no
        arguments is called once, when a value is first checked or the
        parameter described, so a long list from a heavy package (PyWavelets'
        wavelet names) costs nothing at registration.
    low, high : float, optional
        Bounds of a numeric value. Without ``low`` any value below ``high``
        passes; without ``high`` the ceiling :data:`DEFAULT_HIGH` (1e6)
        applies, so **every numeric parameter should declare ``high``**: the
        largest value that still runs in sane time and memory. Infinite
        values are always refused.
    closed : {"both", "left", "right", "neither"}
        Which bounds are allowed values themselves: ``"both"`` (default)
        means ``low <= value <= high``, ``"left"`` ``low <= value < high``,
        ``"neither"`` ``low < value < high``.
    allow_nan : bool
        Accept NaN as a float value (refused by default).

    Notes
    -----
    The declaration itself is checked when a plugin registers it (see
    :meth:`problems`): a default outside the bounds or choices makes the
    plugin fail with a message naming the parameter.

    Examples
    --------
    >>> from restorekit import Param
    >>> iters = Param("num_iter", 10, "iterations", low=1, high=10_000)
    >>> iters.convert("25")
    25
    >>> iters.convert(2.5)
    Traceback (most recent call last):
    ...
    restorekit.errors.ParameterError: parameter 'num_iter' got 2.5: must be an integer, not the float 2.5; give a whole number such as 3. Default is 10.
    >>> Param("h", 0.5, "strength", low=0, closed="neither").convert(0)
    Traceback (most recent call last):
    ...
    restorekit.errors.ParameterError: parameter 'h' got 0: must be > 0. Default is 0.5.
    """

    name: str
    default: Any
    help: str = ""
    parse: Callable[[Any], Any] | None = None
    choices: Iterable[Any] | Callable[[], Iterable[Any]] | None = None
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    allow_nan: bool = False

    def __post_init__(self) -> None:
        if self.choices is not None and not callable(self.choices) and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def kind(self) -> str:
        """The parameter's type as ``restorekit list`` shows it: int, float, bool, str, the parser's name, or any."""
        if self.parse is not None:
            return getattr(self.parse, "__name__", type(self.parse).__name__)
        kind = type(self.default)
        return kind.__name__ if kind in _PARSERS else "any"

    def allowed(self) -> tuple | None:
        """The allowed values (``choices`` called once if it is a callable), or ``None`` for any."""
        if self.choices is None:
            return None
        if callable(self.choices):
            cached = self.__dict__.get("_allowed")
            if cached is None:
                cached = tuple(self.choices())
                object.__setattr__(self, "_allowed", cached)
            return cached
        return self.choices

    def _parser(self) -> Callable[[Any], Any] | None:
        return self.parse if self.parse is not None else _PARSERS.get(type(self.default))

    def check(self, value: Any) -> str:
        """Why an already-parsed ``value`` is not allowed (bounds, NaN, choices), or ``""``."""
        if isinstance(value, float) and math.isnan(value):
            return "" if self.allow_nan else "must be a number, not NaN"
        if _is_number(value) and isinstance(value, float) and math.isinf(value):
            return f"must be a finite number{' ' + self.range_text() if self.range_text() else ''}"
        if _is_number(value) and (self.low is not None or self.high is not None):
            low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
            high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
            if not (low_ok and high_ok):
                return f"must be {self.range_text()}"
        if _is_number(value) and self.high is None and value > DEFAULT_HIGH:
            return (f"must be <= {DEFAULT_HIGH:g} (the ceiling of a parameter that declares no upper bound; "
                    "its plugin should declare high=...)")
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            if len(allowed) <= 12:
                return "choose one of " + ", ".join(repr(c) for c in allowed)
            import difflib

            close = difflib.get_close_matches(str(value), [str(c) for c in allowed], n=3)
            hint = f" (closest: {', '.join(close)})" if close else ""
            return f"choose one of its {len(allowed)} values{hint}; 'restorekit list --json' lists them all"
        return ""

    def range_text(self) -> str:
        """The bounds in words, e.g. ``">= 1"`` or ``"> 0 and <= 1"``."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low!r}")
        if self.high is not None:
            parts.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {self.high!r}")
        return " and ".join(parts)

    def convert(self, value: Any, owner: str = "") -> Any:
        """Return ``value`` parsed and checked, or raise :class:`ParameterError`."""
        parser = self._parser()
        try:
            parsed = parser(value) if parser is not None else value
        except (TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: int(float("inf")) in a parser
            raise ParameterError(
                f"parameter {self.name!r}{_of(owner)} got {value!r}: {exc}. Default is {self._default_shown()}."
            ) from None
        reason = self.check(parsed)
        if reason:
            raise ParameterError(f"parameter {self.name!r}{_of(owner)} got {value!r}: {reason}. "
                                 f"Default is {self._default_shown()}.")
        return parsed

    def _default_shown(self) -> str:
        """The default for a message: ``'auto'`` for a ``None`` default that the parser reads from 'auto'."""
        if self.default is None and self.parse is not None:
            try:
                if self.parse("auto") is None:
                    return "'auto'"
            except Exception:  # noqa: BLE001 - a parser that refuses 'auto'
                pass
        return repr(self.default)

    def problems(self) -> list[str]:
        """Reasons this declaration is invalid (empty when valid); checked when a plugin registers it.

        A default of ``None`` means "not set" and is not checked; callable
        ``choices`` are not called here (registration stays light).
        """
        found = []
        if not isinstance(self.name, str) or not self.name or any(c.isspace() or c in "=." for c in self.name):
            found.append(f"name {self.name!r} must be a non-empty string without spaces, '=' or '.'")
        if self.closed not in CLOSED:
            found.append(f"closed={self.closed!r} must be one of {', '.join(CLOSED)}")
        for side in ("low", "high"):
            bound = getattr(self, side)
            if bound is not None and (not _is_number(bound) or math.isnan(bound)):
                found.append(f"{side}={bound!r} must be a number")
        if _is_number(self.low) and _is_number(self.high) and self.low > self.high:
            found.append(f"low={self.low!r} is above high={self.high!r}")
        if (self.low is not None or self.high is not None) and self.parse is None \
                and type(self.default) not in (int, float):
            found.append(f"bounds apply to numbers, but the default {self.default!r} is a {type(self.default).__name__}")
        if self.choices is not None and not callable(self.choices) and not self.choices:
            found.append("choices must not be empty")
        if not found and self.default is not None:
            # Bounds and NaN always; callable choices wait until first use.
            reason = (replace(self, choices=None) if callable(self.choices) else self).check(self.default)
            if reason:
                found.append(f"its default {self.default!r} is not allowed: {reason}")
        return found

    def describe(self) -> dict:
        """A JSON-friendly description (used by ``restorekit list --json``)."""
        out = {"name": self.name, "default": self.default, "type": self.kind, "help": self.help}
        if self.low is not None:
            out["low"] = self.low
        if self.high is not None:
            out["high"] = self.high
        if self.low is not None or self.high is not None:
            out["closed"] = self.closed
        if self.kind == "float" or self.allow_nan:
            out["allow_nan"] = self.allow_nan
        allowed = self.allowed()
        if allowed is not None:
            out["choices"] = list(allowed)
        return out


def _of(owner: str) -> str:
    return f" of {owner!r}" if owner else ""


def resolve_params(params: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict:
    """Merge ``given`` over the defaults of ``params``, refusing unknown names."""
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f"{_of(owner)}; it takes: {names}"
        )
    return {p.name: (p.convert(given[p.name], owner) if p.name in given else p.default) for p in params}


# --------------------------------------------------------------------------- restorers
class Restorer(abc.ABC):
    """Base class of every restoration method.

    Subclasses set the class attributes ``name``, ``tasks``, ``params`` and
    ``summary`` and implement :meth:`restore`. Parameter values are resolved
    and checked in ``__init__`` and kept in ``self.config``.

    Examples
    --------
    >>> import torch
    >>> from restorekit.restorer import Restorer, Param
    >>> class Clip(Restorer):
    ...     name = "clip"
    ...     tasks = frozenset({"denoise"})
    ...     params = (Param("low", 0.0, "smallest value kept"),)
    ...     def restore(self, image, degradation=None):
    ...         return image.clamp(self.config["low"], 1.0)
    >>> Clip(low=0.5)(torch.zeros(1, 1, 2, 2)).max().item()
    0.5
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[frozenset[str]] = frozenset()
    params: ClassVar[tuple[Param, ...]] = ()
    summary: ClassVar[str] = ""
    #: True for a denoiser that reads the noise level (``degradation.sigma``) and adapts to it;
    #: False for a blind one. Plug-and-play solvers hand a denoiser ``Noise(sigma_k)`` and warn
    #: once when it is blind.
    uses_noise_level: ClassVar[bool] = False
    #: The plugin that registered this restorer and that plugin's version (set by the registry on
    #: every instance it builds; shown in every :class:`RestorerFailedError`).
    plugin_name: ClassVar[str] = ""
    plugin_version: ClassVar[str] = ""

    # What the restorer promises, read by :func:`restorekit.testing.check_restorer` (an instance
    # may set its own value in ``__init__`` when a parameter changes it).
    #: The channel counts it restores; another count must raise a :class:`RestorekitError`.
    channels: ClassVar[tuple[int, ...]] = (1, 3)
    #: The smallest height and width it takes (e.g. a network's receptive field).
    min_size: ClassVar[int] = 1
    #: ``(height, width)`` when it takes one image size only, else None.
    fixed_size: ClassVar[tuple[int, int] | None] = None
    #: The range every output value lies in (the default: restorers clip to [0, 1]); None when
    #: the output is not clipped (a linear estimate for a following step).
    output_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    #: True when it cannot work without the degradation (it reads the blur kernel or the mask):
    #: called with ``degradation=None`` it must raise a :class:`RestorekitError` naming what is
    #: missing. False (default): ``degradation=None`` is handled (a blind method).
    needs_degradation: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.config = resolve_params(self.params, params, self.name or type(self).__name__)

    @abc.abstractmethod
    def restore(self, image: "torch.Tensor", degradation: "Degradation | None" = None) -> "torch.Tensor":
        """Restore a batch ``image`` (N, C, H, W, float, [0, 1]) damaged by ``degradation``."""

    def __call__(self, image: "torch.Tensor", degradation: "Degradation | None" = None) -> "torch.Tensor":
        """Check ``image``, restore it, and check the output against the contract.

        Raises
        ------
        InputError
            ``image`` is not a finite N, C, H, W float tensor on a real device, or is clearly
            not on the [0, 1] scale (a 0-255 image: see :func:`restorekit.checks.check_unit_range`).
        RestorerFailedError
            The restorer's code raised something other than a :class:`RestorekitError`, or its
            output is not a finite tensor of the input's dtype, device and shape (height and
            width times ``degradation.scale`` when the degradation downsamples), or lies far
            outside its declared :attr:`output_range` (see :func:`range_problem`).
        """
        check_batch(image, self.name)
        check_unit_range(image, _sigma_of(degradation), self.name)
        if degradation is not None and _signal_dependent(degradation):
            degradation, vst = _poisson_gaussian(self, degradation, image)
            if vst is not None:  # a denoiser that reads no noise level: through the Anscombe transform
                from .degrade import Noise
                from .degrade.vst import vst_denoise

                return vst_denoise(lambda z, s: self.restore_checked(z, Noise(min(s, 1.0))), image, vst.gain,
                                   vst.read_sigma).to(image.dtype)
        return self.restore_checked(image, degradation, (scale_of(degradation),))

    def restore_checked(
        self, image: "torch.Tensor", degradation: "Degradation | None", scales: Sequence[int] = (1,)
    ) -> "torch.Tensor":
        """:meth:`restore` under the contract: the output's height and width are the input's
        times one of ``scales``; anything else, or an exception from the restorer's code, is
        one :class:`RestorerFailedError` (the exception chained)."""
        try:
            with plugin_code(describe_restorer(self)):  # print() to stderr, os._exit refused
                out = self.restore(image, degradation)
        except (RestorekitError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - plugin code: reported with the plugin's name
            first = (str(exc).strip().splitlines() or [""])[0]
            raise RestorerFailedError(
                f"{describe_restorer(self)} failed: {type(exc).__name__}{': ' + first if first else ''}"
            ) from exc
        problem = output_problem(out, image, scales) or range_problem(out, image, self.output_range)
        if problem:
            raise RestorerFailedError(f"{describe_restorer(self)} broke the restorer contract: {problem}")
        return out

    def replaced(self, **changes: Any) -> "Restorer":
        """A new restorer of this class with this one's parameters, ``changes`` applied (checked as in ``__init__``).

        Keeps the plugin's name and version. Raises :class:`ParameterError`
        for a parameter the class does not take or a value it refuses.

        Examples
        --------
        >>> import restorekit
        >>> restorekit.create("wiener", snr=50).replaced(snr=10).config["snr"]
        10.0
        """
        new = self._rebuilt({**self.config, **changes})
        new.plugin_name, new.plugin_version = self.plugin_name, self.plugin_version
        return new

    def _rebuilt(self, params: dict) -> "Restorer":
        """This class built with ``params`` (a subclass whose constructor takes more than its parameters adds it)."""
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


def _signal_dependent(degradation: Any) -> bool:
    """Whether ``degradation`` holds noise that varies with the signal (Poisson-Gaussian), without importing torch."""
    parts = degradation.parts() if hasattr(degradation, "parts") else ()
    return any(type(p).__name__ == "PoissonGaussian" for p in parts)


def _poisson_gaussian(restorer: "Restorer", degradation: Any, image: Any) -> tuple[Any, Any]:
    """``degradation`` bound to ``image`` (its RMS ``sigma`` is the image's) and the noise to take through the
    variance-stabilising transform, or None (see :func:`restorekit.degrade.vst.route`)."""
    from .degrade.poisson import observe
    from .degrade.vst import route

    return observe(degradation, image), route(restorer, degradation)


#: How far an output may leave its declared range (beyond the input's own range) before it is refused:
#: far enough that rounding and a noisy input's excursions pass, and a broken scale (x3, x10, 0-255) does not.
RANGE_SLACK = 1.0


def range_problem(out: "torch.Tensor", image: "torch.Tensor", output_range: Any) -> str:
    """Why ``out`` lies far outside ``output_range`` ("" when it does not, or when the range is None).

    Far means more than :data:`RANGE_SLACK` beyond both the declared range and the input's own
    range (a noisy input legitimately leaves [0, 1]). Such an output is refused rather than
    clipped: it is a bug of the restorer (a x10 or 0-255 scale), and clipping would write a
    wrong image without a word. A small overshoot passes unchanged.
    """
    import torch

    if output_range is None:
        return ""
    out_low, out_high = (float(v) for v in torch.aminmax(out.detach()))
    in_low, in_high = (float(v) for v in torch.aminmax(image.detach()))
    low, high = float(output_range[0]), float(output_range[1])
    if out_low < min(low, in_low) - RANGE_SLACK or out_high > max(high, in_high) + RANGE_SLACK:
        return (f"its output has values from {out_low:.4g} to {out_high:.4g}, far outside its output range "
                f"[{low:g}, {high:g}] (a wrong scale?); report this to the plugin's author")
    return ""


def _sigma_of(degradation: Any) -> float:
    """The degradation's noise sigma (0 without one, or when it cannot say)."""
    try:
        sigma = float(getattr(degradation, "sigma", 0.0) or 0.0) if degradation is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return sigma if math.isfinite(sigma) else 0.0


def scale_of(degradation: Any) -> int:
    """The degradation's downsampling factor (``degradation.scale``; 1 without one)."""
    scale = getattr(degradation, "scale", 1) if degradation is not None else 1
    return int(scale) if isinstance(scale, int) and scale > 1 else 1


def describe_restorer(restorer: Any) -> str:
    """``restorer 'name' of plugin 'p' 1.0`` (the class's import path when no plugin is known)."""
    text = f"restorer {getattr(restorer, 'name', '')!r}"
    plugin = getattr(restorer, "plugin_name", "")
    if plugin:
        version = getattr(restorer, "plugin_version", "")
        return f"{text} of plugin {plugin!r}{' ' + version if version else ''}"
    cls = type(restorer)
    return f"{text} ({cls.__module__}.{cls.__qualname__})"


def output_problem(out: Any, image: "torch.Tensor", scales: Sequence[int] = (1,)) -> str:
    """Why ``out`` is not a valid restoration of ``image`` ("" when it is).

    Valid: a tensor of ``image``'s dtype and device, of shape (N, C, H * s, W * s) for one of
    ``scales``, with no NaN or Inf.
    """
    import torch

    if not isinstance(out, torch.Tensor):
        return f"it returned a {type(out).__name__}, not a torch.Tensor"
    n, c, h, w = image.shape
    allowed = [(n, c, h * s, w * s) for s in dict.fromkeys(scales)]
    if tuple(out.shape) not in allowed:
        expected = " or ".join(str(a) for a in allowed)
        return f"it returned shape {tuple(out.shape)} for an input of shape {tuple(image.shape)} (expected {expected})"
    if out.dtype != image.dtype:
        return f"it returned {out.dtype} for a {image.dtype} input; return the input's dtype"
    if out.device != image.device:
        return f"it returned a tensor on {out.device} for an input on {image.device}; return it on the input's device"
    if not torch.isfinite(out.sum()) and not torch.isfinite(out).all():
        return "its output contains NaN or Inf values"
    return ""


@dataclass(frozen=True)
class RestorerSpec:
    """What a plugin registers: the description of a restorer and how to build it.

    ``factory`` is a callable ``factory(**params) -> Restorer`` or a lazy
    ``"package.module:Attribute"`` string resolved on first build; a factory
    that declares a ``registry`` parameter is also given the
    :class:`~restorekit.registry.Registry` building it (to build other
    restorers by name there, as ``pnp`` builds its denoiser). The registry
    builds every restorer (:meth:`~restorekit.registry.Registry.create`). When
    ``steps`` is given the spec is a pipeline (see :func:`pipeline_spec`),
    whose steps the registry builds by name.
    ``standalone=False`` marks a restorer meant only as a step after another
    one (e.g. a network trained on Wiener outputs): it is listed and can be
    built by name, but is left out when the methods for a task are chosen
    automatically (``restorekit demo``, ``restorekit bench`` without
    ``--methods``). ``plugin`` is filled in by the registry.
    """

    name: str
    tasks: frozenset[str]
    params: tuple[Param, ...] = ()
    factory: Callable[..., Restorer] | str | None = None
    summary: str = ""
    steps: tuple[tuple[str, dict], ...] = ()
    plugin: str = ""
    standalone: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", frozenset(self.tasks))
        object.__setattr__(self, "params", tuple(self.params))

    @classmethod
    def from_class(cls, restorer_cls: type[Restorer]) -> "RestorerSpec":
        """The spec of a :class:`Restorer` subclass, read from its class attributes."""
        return cls(
            name=restorer_cls.name,
            tasks=restorer_cls.tasks,
            params=restorer_cls.params,
            factory=restorer_cls,
            summary=restorer_cls.summary or (restorer_cls.__doc__ or "").strip().split("\n")[0],
            standalone=bool(getattr(restorer_cls, "standalone", True)),
        )

    @property
    def is_pipeline(self) -> bool:
        return bool(self.steps)

    def problems(self) -> list[str]:
        """Reasons this spec cannot be registered (empty when it is valid)."""
        found = []
        if not isinstance(self.name, str) or not self.name or any(c.isspace() for c in self.name):
            found.append(f"name {self.name!r} must be a non-empty string without spaces")
        bad_tasks = set(self.tasks) - set(TASKS)
        if (not self.tasks and not self.steps) or bad_tasks:  # a pipeline's tasks may come from its first step
            found.append(f"tasks {sorted(self.tasks)} must be a non-empty subset of {list(TASKS)}")
        if not all(isinstance(p, Param) for p in self.params):
            found.append("params must be restorekit.Param objects")
        else:
            names = [p.name for p in self.params]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                found.append(f"parameter{'s' if len(twice) > 1 else ''} {', '.join(map(repr, twice))} "
                             "declared more than once")
            found += [f"parameter {p.name!r}: {problem}" for p in self.params for problem in p.problems()]
        if self.factory is None and not self.steps:
            found.append("needs a factory (a Restorer subclass, a callable or 'module:attr') or steps")
        return found

    def resolve_factory(self) -> Callable[..., Restorer]:
        factory = self.factory
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                from .errors import PluginError

                raise PluginError(
                    f"restorer {self.name!r} of plugin {self.plugin!r} could not load {self.factory!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return factory

    def describe(self) -> dict:
        out = {
            "name": self.name,
            "plugin": self.plugin,
            "tasks": sorted(self.tasks),
            "summary": self.summary,
            "standalone": self.standalone,
            "params": [p.describe() for p in self.params],
        }
        if self.steps:
            out["steps"] = [{"name": n, "params": dict(p)} for n, p in self.steps]
        return out


# --------------------------------------------------------------------------- pipelines
class Pipeline(Restorer):
    """Restorers applied one after another; itself a restorer.

    Every step receives the original ``degradation``: a non-blind first step
    (Wiener) uses the kernel, and a following learned step that was trained
    on that step's outputs ignores it.

    Examples
    --------
    >>> import restorekit
    >>> pipe = restorekit.pipeline("wiener", "wiener")  # doctest: +SKIP
    """

    def __init__(self, steps: Sequence[Restorer], name: str = "", tasks: Iterable[str] | None = None) -> None:
        if not steps:
            raise ParameterError("a pipeline needs at least one restorer")
        self.steps = list(steps)
        self.config = {}
        self.name = name or "+".join(s.name for s in self.steps)
        self.tasks = frozenset(tasks) if tasks is not None else frozenset(self.steps[0].tasks)
        # What the chain promises, from its steps (see the attributes of Restorer).
        self.channels = tuple(c for c in self.steps[0].channels if all(c in s.channels for s in self.steps))
        self.min_size = max(s.min_size for s in self.steps)
        self.fixed_size = next((s.fixed_size for s in self.steps if s.fixed_size is not None), None)
        self.output_range = self.steps[-1].output_range
        self.needs_degradation = any(s.needs_degradation for s in self.steps)

    def restore(self, image, degradation=None):
        # Each step runs under the contract, so a failing step is named. Until some step has
        # upscaled (super-resolution), a step may return the input's size or the scaled one.
        scale = scale_of(degradation)
        out = image
        for step in self.steps:
            check_batch(out, step.name)
            scales = (1, scale) if tuple(out.shape[-2:]) == tuple(image.shape[-2:]) else (1,)
            out = step.restore_checked(out, degradation, scales)
        return out

    def replaced(self, **changes: Any) -> "Restorer":
        """Refused in one line: a pipeline's parameters are its steps'; build it again from replaced steps."""
        raise ParameterError(f"pipeline {self.name!r} has no parameters of its own to replace; replace them on its "
                             "steps (pipeline.steps[i].replaced(...)) and build the pipeline again")

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={self.steps!r})"


def pipeline_spec(
    name: str,
    steps: Sequence[str | tuple[str, Mapping[str, Any]]],
    tasks: Iterable[str] | None = None,
    summary: str = "",
) -> RestorerSpec:
    """A spec for a named pipeline of registered restorers.

    ``steps`` are restorer names, or ``(name, params)`` pairs that fix
    parameters of a step. Users can override a step's parameter with
    ``stepname.param=value`` (``--param wiener.snr=auto``). ``tasks``
    defaults to the first step's tasks: the registry fills them in once
    every plugin has loaded, and checks then that each step names a
    registered restorer and that the fixed parameters are valid for it.
    """
    normalized = tuple((s, {}) if isinstance(s, str) else (s[0], dict(s[1])) for s in steps)
    return RestorerSpec(
        name=name,
        tasks=frozenset(tasks) if tasks is not None else frozenset(),
        summary=summary or "pipeline: " + " -> ".join(n for n, _ in normalized),
        steps=normalized,
        params=(),
    )


def split_step_params(step_names: Sequence[str], params: Mapping[str, Any], owner: str) -> list[dict]:
    """Route ``"step.param"`` keys to their step; a bare key goes to every step that takes it."""
    routed: list[dict] = [{} for _ in step_names]
    for key, value in params.items():
        step, dot, pname = key.partition(".")
        if dot:
            matches = [i for i, n in enumerate(step_names) if n == step]
            if not matches:
                raise ParameterError(
                    f"parameter {key!r} of pipeline {owner!r} names step {step!r}; "
                    f"its steps are: {', '.join(step_names)}"
                )
            for i in matches:
                routed[i][pname] = value
        else:
            raise ParameterError(
                f"parameter {key!r} of pipeline {owner!r} must name its step, e.g. "
                f"{step_names[0]}.{key}={value}"
            )
    return routed


def with_plugin(spec: RestorerSpec, plugin: str) -> RestorerSpec:
    return replace(spec, plugin=plugin)


__all__ = [
    "DEFAULT_HIGH",
    "TASKS",
    "Param",
    "Pipeline",
    "Restorer",
    "RestorerSpec",
    "check_batch",
    "describe_restorer",
    "output_problem",
    "range_problem",
    "scale_of",
    "float_or_auto",
    "parse_bool",
    "pipeline_spec",
    "resolve_params",
    "split_step_params",
]
