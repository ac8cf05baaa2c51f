"""Check a restorer against restorekit's restorer contract, the way scikit-learn checks estimators.

:func:`check_restorer` runs every check below on one restorer (a registered name, a
:class:`~restorekit.restorer.Restorer` subclass or an instance) and raises
:class:`RestorerCheckError` naming each failed check; :func:`parametrize_with_checks` turns the
same checks into one pytest test per (restorer, check), for a plugin's own test suite;
``restorekit check NAME...`` runs them from the command line.

The checks (each a function of this module, named in every report):

=============================== ==================================================================
check                           what it asks of the restorer
=============================== ==================================================================
``check_declared_params``       every declared parameter's default, passed explicitly, builds it;
                                each default written as text (``--param k=v``) parses back to itself
``check_batched_nchw``          a batch of 2 in, a batch of 2 out, each item as when restored alone
``check_gray``                  a 1-channel batch restored (or refused with a RestorekitError when
                                ``channels`` leaves 1 out: skipped, the refusal checked)
``check_colour``                the same for 3 channels
``check_odd_non_square``        an odd, non-square size (skipped for a ``fixed_size``)
``check_dtype_kept``            float64 in, float64 out
``check_device_kept``           output on the input's device (CPU; CUDA too when there is one)
``check_input_not_modified``    the input tensor is left as it was
``check_same_seed_same_output`` the same output twice with ``torch.manual_seed(0)`` before each call
                                (up to float rounding, 1e-6)
``check_output_range``          every value inside ``output_range`` (skipped when it is None)
``check_bad_input_raises``      NaN, a wrong rank or an integer image raise a RestorekitError
``check_degradation_none``      ``degradation=None`` restored, or (``needs_degradation = True``)
                                refused with a RestorekitError of the restorer's own
``check_every_task``            each declared task's degradation restored (output scaled for
                                super-resolution); skipped for a restorer of one task
=============================== ==================================================================

Every call also goes through the contract of :meth:`Restorer.__call__` (output a finite tensor of
the input's shape, dtype and device), so each check fails on a contract violation too.

What a restorer promises is declared by class attributes of
:class:`~restorekit.restorer.Restorer` (an instance may set its own in ``__init__``):
``channels`` (default ``(1, 3)``), ``min_size`` (default 1), ``fixed_size`` (default None),
``output_range`` (default ``(0.0, 1.0)``: restorers clip; None for one that does not) and
``needs_degradation`` (default False). Images are small (24x24 for the checks, 23x31 for the odd
size; at least ``min_size``), degraded for the restorer's first task (in ``TASKS`` order):

* denoise: ``Noise(0.05)``;
* deblur: ``Compose(Blur(load_kernel("course")), Noise(0.01))`` (the course's 7x7 kernel, the one
  the benchmark uses by default);
* inpaint: ``Compose(Mask.random(h, w, 0.3), Noise(0.01))``;
* superresolve: ``Compose(Downsample(2), Noise(0.01))`` (the restorer gets the low-resolution image).

A restorer trained for one degradation only (e.g. a fixed mask) may define a method
``example_degradation(task, height, width)`` returning the degradation its checks should use
(None: the default above).

Examples
--------
In a plugin's test suite::

    from restorekit.testing import parametrize_with_checks

    @parametrize_with_checks(["my-restorer", MyRestorer])
    def test_contract(restorer, check):
        check(restorer)

Directly (here on a small restorer defined on the spot):

>>> import torch
>>> from restorekit.restorer import Restorer
>>> from restorekit.testing import check_restorer
>>> class Clip(Restorer):
...     name = "clip"
...     tasks = frozenset({"denoise"})
...     def restore(self, image, degradation=None):
...         return image.clamp(0, 1)
>>> results = check_restorer(Clip)
>>> all(r.passed for r in results), len(results)
(True, 13)
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "RESTORER_CHECKS",
    "RestorerCheckError",
    "RestorerCheckResult",
    "RestorerUnderCheck",
    "check_restorer",
    "example_degradation",
    "parametrize_with_checks",
    "run_restorer_checks",
    "select_checks",
]

#: Side of the square images most checks use, and the odd, non-square size (at least ``min_size``).
SIZE = 24
ODD_SIZE = (23, 31)
#: How far a batch item may differ from the same image restored alone ([0, 1] scale).
BATCH_ATOL = 1e-4
#: How far two calls with the same seed may differ: float rounding only (an FFT library that plans
#: per call, a threaded reduction), far below any random draw.
SEED_ATOL = 1e-6


# --------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class RestorerCheckResult:
    """The outcome of one check: ``status`` is ``"passed"``, ``"failed"`` or ``"skipped"``."""

    restorer: str
    check: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check does not fail)."""
        return self.status != "failed"

    def line(self) -> str:
        """One line for a report: ``PASS check_gray  restored (2, 1, 24, 24)``."""
        mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[self.status]
        return f"{mark} {self.check}" + (f"  {self.detail}" if self.detail else "")


class RestorerCheckError(AssertionError):
    """Some checks of :func:`check_restorer` failed; the message lists each by name and reason."""

    def __init__(self, message: str, results: Sequence[RestorerCheckResult]) -> None:
        super().__init__(message)
        self.results = list(results)


class CheckSkipped(Exception):
    """Raised inside a check that does not apply to the restorer; the message says why."""


# --------------------------------------------------------------------------- the restorer under check
class RestorerUnderCheck:
    """A restorer to check: how to build it and, built once on first use, the instance.

    Parameters
    ----------
    target : str, Restorer subclass or Restorer
        A registered name (built by ``registry``), a class (built with ``params``) or an instance.
    params : mapping
        Parameters the restorer is built with (not for an instance).
    registry : Registry, optional
        Where a name is looked up; the default registry otherwise.
    """

    def __init__(self, target: Any, params: Mapping[str, Any] | None = None, registry: Any = None) -> None:
        from ..errors import ParameterError
        from ..restorer import Restorer

        self.target = target
        self.params = dict(params or {})
        self._registry = registry
        self._built: Any = None
        if isinstance(target, Restorer):
            if self.params:
                raise ParameterError("pass parameters with a restorer's name or class, not with a built instance")
            self._built = target
        elif isinstance(target, str):
            if "+" not in target or target in self.registry.names():
                self.registry.get(target)  # an unknown name: UnknownRestorerError, with close matches
        elif not (isinstance(target, type) and issubclass(target, Restorer)):
            raise ParameterError(
                f"check a restorer's registered name, a Restorer subclass or an instance, not {type(target).__name__}"
            )

    @property
    def registry(self):
        if self._registry is None:
            from ..registry import default_registry

            self._registry = default_registry()
        return self._registry

    @property
    def label(self) -> str:
        """The name shown in reports and test ids (``wiener``, ``wiener[snr=auto]``)."""
        if isinstance(self.target, str):
            name = self.target
        else:
            cls = self.target if isinstance(self.target, type) else type(self.target)
            name = cls.name or cls.__name__
        extra = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{name}[{extra}]" if extra else name

    def build(self, **params: Any):
        """A new restorer of the target, built with ``params`` (the check's own parameters)."""
        if isinstance(self.target, str):
            return self.registry.create(self.target, **params)
        cls = self.target if isinstance(self.target, type) else type(self.target)
        return cls(**params)

    @property
    def restorer(self):
        """The restorer built with :attr:`params` (once; every check then reuses it)."""
        if self._built is None:
            self._built = self.build(**self.params)
        return self._built

    def declared_params(self) -> list[tuple[str, Any]]:
        """``(key, Param)`` for every parameter one may pass (a pipeline's as ``step.name``)."""
        if not isinstance(self.target, str):
            cls = self.target if isinstance(self.target, type) else type(self.target)
            return [(p.name, p) for p in cls.params]
        name = self.target
        specs = {s.name: s for s in self.registry.specs()}
        if name in specs and not specs[name].is_pipeline:
            return [(p.name, p) for p in specs[name].params]
        steps = [n for n, _ in specs[name].steps] if name in specs else [s.strip() for s in name.split("+")]
        return [(f"{step}.{p.name}", p) for step in steps for p in self.registry.get(step).params]

    def __repr__(self) -> str:  # shown by pytest for a failing parametrized test
        return self.label


# --------------------------------------------------------------------------- images and degradations
def example_degradation(task: str, height: int, width: int, seed: int = 0):
    """The degradation the checks use for ``task`` on an image of ``height x width``.

    :func:`restorekit.degrade.spec.task_degradation` (the builder ``bench``
    and the command line use) at the levels of
    :data:`~restorekit.degrade.spec.TASK_DEFAULTS`, the course kernel for
    ``deblur``, 30% of pixels missing for ``inpaint``, x2 for ``superresolve``.
    For ``"superresolve"``, ``height`` and ``width`` are the high-resolution
    size (multiples of 2).
    """
    from ..degrade.spec import TASK_DEFAULTS, task_degradation

    if task not in TASK_DEFAULTS:
        raise CheckSkipped(f"no example degradation for task {task!r}")
    return task_degradation(task, TASK_DEFAULTS[task], height, width, seed,
                            kernel="course" if task == "deblur" else None, mask="random:0.3", scale=2)


def _clean(n: int, channels: int, height: int, width: int, seed: int = 0):
    """A smooth random image with an edge, a saturated white block and a black one, in [0, 1]."""
    import torch

    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, max(2, height // 6), max(2, width // 6), generator=g)
    x = torch.nn.functional.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    x[..., : height // 4, : width // 4] = 1.0
    x[..., height // 2 :, width // 2 : width // 2 + max(1, width // 6)] = 0.0
    return x.clamp(0, 1)


def _tasks(restorer) -> list[str]:
    from ..restorer import TASKS

    return [t for t in TASKS if t in restorer.tasks] + sorted(set(restorer.tasks) - set(TASKS))


def _degradation(restorer, task: str, height: int, width: int, seed: int = 0):
    custom = getattr(restorer, "example_degradation", None)
    made = custom(task, height, width) if callable(custom) else None
    return made if made is not None else example_degradation(task, height, width, seed)


def _problem(restorer, task: str | None = None, n: int = 1, channels: int | None = None,
             size: tuple[int, int] | None = None, seed: int = 0, dtype=None):
    """``(degraded batch, degradation, clean)`` for ``restorer``'s task, its declared size and channels."""
    import torch

    task = task or _tasks(restorer)[0]
    c = channels if channels is not None else (3 if 3 in restorer.channels else restorer.channels[0])
    h, w = size or _square(restorer)
    scale = 2 if task == "superresolve" else 1
    degradation = _degradation(restorer, task, h * scale, w * scale, seed)
    clean = _clean(n, c, h * scale, w * scale, seed)
    if dtype is not None:
        clean = clean.to(dtype)
    degraded = degradation.apply(clean, seed=seed)
    return degraded.to(clean.dtype if dtype is None else dtype), degradation, clean


def _square(restorer) -> tuple[int, int]:
    fixed = getattr(restorer, "fixed_size", None)
    if fixed is not None:
        return tuple(fixed)
    side = max(SIZE, int(getattr(restorer, "min_size", 1)))
    return side, side


def _call(restorer, image, degradation):
    out = restorer(image, degradation)
    import torch

    assert isinstance(out, torch.Tensor), f"returned a {type(out).__name__}"  # __call__ checked it already
    return out


def _expected(image, degradation) -> tuple[int, ...]:
    from ..restorer import scale_of

    s = scale_of(degradation)
    n, c, h, w = image.shape
    return (n, c, h * s, w * s)


# --------------------------------------------------------------------------- the checks
def check_declared_params(subject: RestorerUnderCheck) -> str:
    """Every declared parameter's default, passed explicitly, builds; written as text, it parses back."""
    from ..restorer import resolve_params

    declared = subject.declared_params()
    if not declared:
        raise CheckSkipped("declares no parameters")
    for key, param in declared:
        if param.default is None:
            continue
        text = str(param.default).lower() if isinstance(param.default, bool) else str(param.default)
        try:
            parsed = resolve_params([param], {param.name: text}, subject.label)[param.name]
        except Exception as exc:  # noqa: BLE001 - reported as the check's failure
            raise AssertionError(f"parameter {key!r}: its default {param.default!r} written as {text!r} "
                                 f"is refused: {_one_line(exc)}") from None
        assert parsed == param.default, (
            f"parameter {key!r}: its default {param.default!r} written as {text!r} parses to {parsed!r}")
    subject.build(**{**{k: p.default for k, p in declared}, **subject.params})
    return f"built with {len(declared)} default(s) given explicitly: {', '.join(k for k, _ in declared)}"


def check_batched_nchw(subject: RestorerUnderCheck) -> str:
    """A batch of two images in, a batch of two out, each item as when restored alone."""
    r = subject.restorer
    image, degradation, _ = _problem(r, n=2)
    out = _call(r, image, degradation)
    assert tuple(out.shape) == _expected(image, degradation), f"shape {tuple(out.shape)}"
    for i in range(2):
        alone = _call(r, image[i : i + 1].clone(), degradation)
        diff = float((out[i : i + 1].double() - alone.double()).abs().max())
        assert diff <= BATCH_ATOL, (
            f"item {i} of the batch differs from the same image restored alone by {diff:.3g} (> {BATCH_ATOL:g}); "
            "restore each image of a batch independently")
    return f"{tuple(image.shape)} -> {tuple(out.shape)}, items as alone"


def _channels_check(subject: RestorerUnderCheck, c: int) -> str:
    from ..errors import RestorekitError, RestorerFailedError

    r = subject.restorer
    image, degradation, _ = _problem(r, channels=c)
    if c not in r.channels:
        try:
            r(image, degradation)
        except RestorerFailedError as exc:
            raise AssertionError(f"declares channels {tuple(r.channels)}; on {c} channel(s) its code crashed "
                                 f"instead of refusing: {_one_line(exc)}") from None
        except RestorekitError as exc:
            raise CheckSkipped(f"declares channels {tuple(r.channels)}; {c} channel(s) refused clearly: "
                               f"{_one_line(exc)}") from None
        raise AssertionError(f"declares channels {tuple(r.channels)} but restored {c} channel(s) without an "
                             "error; add the count to `channels` or refuse it with an InputError")
    out = _call(r, image, degradation)
    return f"{tuple(image.shape)} -> {tuple(out.shape)}"


def check_gray(subject: RestorerUnderCheck) -> str:
    """A 1-channel batch restored, or refused with a RestorekitError when ``channels`` leaves 1 out."""
    return _channels_check(subject, 1)


def check_colour(subject: RestorerUnderCheck) -> str:
    """A 3-channel batch restored, or refused with a RestorekitError when ``channels`` leaves 3 out."""
    return _channels_check(subject, 3)


def check_odd_non_square(subject: RestorerUnderCheck) -> str:
    """An odd, non-square image (23x31, or larger for ``min_size``)."""
    r = subject.restorer
    if getattr(r, "fixed_size", None) is not None:
        raise CheckSkipped(f"declares fixed_size {tuple(r.fixed_size)}")
    m = int(getattr(r, "min_size", 1))
    h = max(ODD_SIZE[0], m | 1)
    w = max(ODD_SIZE[1], h + 8)
    image, degradation, _ = _problem(r, size=(h, w))  # the input's size (low-resolution for SR)
    out = _call(r, image, degradation)
    return f"{tuple(image.shape)} -> {tuple(out.shape)}"


def check_dtype_kept(subject: RestorerUnderCheck) -> str:
    """float64 in, float64 out (float32 is what every other check passes)."""
    import torch

    r = subject.restorer
    image, degradation, _ = _problem(r, dtype=torch.float64)
    out = _call(r, image, degradation)
    assert out.dtype == torch.float64, f"returned {out.dtype}"
    return "float32 and float64 kept"


def check_device_kept(subject: RestorerUnderCheck) -> str:
    """The output lies on the input's device: the CPU, and a CUDA GPU when there is one."""
    import torch

    r = subject.restorer
    image, degradation, _ = _problem(r)
    assert _call(r, image, degradation).device == image.device
    if not torch.cuda.is_available():
        return "cpu (no CUDA GPU here)"
    keys = [k for k, _ in subject.declared_params() if k == "device" or k.endswith(".device")]
    on_gpu = subject.build(**{**subject.params, **{k: "cuda" for k in keys}})
    out = _call(on_gpu, image.cuda(), degradation.to("cuda"))
    assert out.device.type == "cuda", f"a CUDA input came back on {out.device}"
    return "cpu and cuda"


def check_input_not_modified(subject: RestorerUnderCheck) -> str:
    """The input tensor is left exactly as it was (restore a copy, not in place)."""
    import torch

    r = subject.restorer
    image, degradation, _ = _problem(r)
    before = image.clone()
    _call(r, image, degradation)
    assert torch.equal(image, before), (
        f"the input was changed in place (largest change {float((image - before).abs().max()):.3g}); "
        "work on a copy (image.clone()) or use out-of-place operations")
    return "input unchanged"


def check_same_seed_same_output(subject: RestorerUnderCheck) -> str:
    """Two calls, each after ``torch.manual_seed(0)``, give the same output."""
    import torch

    r = subject.restorer
    image, degradation, _ = _problem(r)
    torch.manual_seed(0)
    first = _call(r, image.clone(), degradation)
    torch.manual_seed(0)
    second = _call(r, image.clone(), degradation)
    diff = float((first.double() - second.double()).abs().max())
    assert diff <= SEED_ATOL, (f"two calls after torch.manual_seed(0) differ by up to {diff:.3g} (> {SEED_ATOL:g}); "
                               "draw random numbers from torch's generator or a seed parameter")
    return "identical" if diff == 0 else f"equal up to {diff:.2g} (float rounding)"


def check_output_range(subject: RestorerUnderCheck) -> str:
    """Every output value lies in the declared ``output_range`` (inputs with noise beyond [0, 1])."""
    r = subject.restorer
    promised = getattr(r, "output_range", None)
    if promised is None:
        raise CheckSkipped("declares output_range None (no range promised)")
    lo, hi = float(promised[0]), float(promised[1])
    image, degradation, _ = _problem(r, n=2)
    out = _call(r, image, degradation)
    got_lo, got_hi = float(out.min()), float(out.max())
    assert got_lo >= lo and got_hi <= hi, (
        f"declares output_range {tuple(promised)} but returned values in [{got_lo:.4g}, {got_hi:.4g}]; "
        "clip the output or declare output_range = None")
    return f"values in [{got_lo:.3g}, {got_hi:.3g}] within {tuple(promised)}"


def check_bad_input_raises(subject: RestorerUnderCheck) -> str:
    """NaN values, a 3-D tensor and an integer image each raise a RestorekitError."""
    import torch

    from ..errors import RestorekitError

    r = subject.restorer
    image, degradation, _ = _problem(r)
    nan = image.clone()
    nan[..., 0, 0] = float("nan")
    cases = {"NaN values": nan, "a 3-D tensor": image[0], "a uint8 image": (image.clamp(0, 1) * 255).to(torch.uint8)}
    for what, bad in cases.items():
        try:
            r(bad, degradation)
        except RestorekitError:
            continue
        except Exception as exc:  # noqa: BLE001 - the check's failure
            raise AssertionError(f"{what} raised {type(exc).__name__}, not a RestorekitError: {_one_line(exc)}") from None
        raise AssertionError(f"{what} was accepted; let Restorer.__call__ check the input (do not override it)")
    return "refused: " + ", ".join(cases)


def check_degradation_none(subject: RestorerUnderCheck) -> str:
    """``degradation=None`` restored (a blind method), or refused clearly when ``needs_degradation``."""
    from ..errors import RestorekitError, RestorerFailedError

    r = subject.restorer
    image, _, _ = _problem(r)
    if getattr(r, "needs_degradation", False):
        try:
            r(image, None)
        except RestorerFailedError as exc:
            raise AssertionError(f"declares needs_degradation; without one its code crashed: {_one_line(exc)}") from None
        except RestorekitError as exc:
            return f"refused clearly: {_one_line(exc)}"
        raise AssertionError("declares needs_degradation = True but restored without a degradation; "
                             "declare needs_degradation = False")
    try:
        out = r(image, None)
    except RestorerFailedError:
        raise
    except RestorekitError as exc:
        raise AssertionError(f"refused degradation=None ({_one_line(exc)}); handle it or declare "
                             "needs_degradation = True") from None
    assert tuple(out.shape) == tuple(image.shape), f"shape {tuple(out.shape)} for {tuple(image.shape)}"
    return "restored without a degradation"


def check_every_task(subject: RestorerUnderCheck) -> str:
    """Each declared task's example degradation restored (the output scaled for super-resolution)."""
    r = subject.restorer
    tasks = _tasks(r)
    if len(tasks) < 2:
        raise CheckSkipped(f"declares one task ({tasks[0]}), which every other check uses")
    done = []
    for task in tasks:
        image, degradation, _ = _problem(r, task=task)
        out = _call(r, image, degradation)
        done.append(f"{task} {tuple(image.shape[-2:])} -> {tuple(out.shape[-2:])}")
    return "; ".join(done)


#: Every check, in the order they run and are reported.
RESTORER_CHECKS: tuple[Callable[[RestorerUnderCheck], str], ...] = (
    check_declared_params,
    check_batched_nchw,
    check_gray,
    check_colour,
    check_odd_non_square,
    check_dtype_kept,
    check_device_kept,
    check_input_not_modified,
    check_same_seed_same_output,
    check_output_range,
    check_bad_input_raises,
    check_degradation_none,
    check_every_task,
)


# --------------------------------------------------------------------------- running them
def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def select_checks(checks: Iterable[str | Callable] | None) -> list[Callable]:
    """The checks named in ``checks`` (``"gray"`` or ``"check_gray"``, or the functions); all when None."""
    from ..errors import ParameterError

    if checks is None:
        return list(RESTORER_CHECKS)
    by_name = {c.__name__: c for c in RESTORER_CHECKS}
    chosen = []
    for c in checks:
        if callable(c):
            chosen.append(c)
            continue
        key = c if c.startswith("check_") else f"check_{c}"
        if key not in by_name:
            raise ParameterError(f"no restorer check named {c!r}; the checks are: {', '.join(by_name)}")
        chosen.append(by_name[key])
    return chosen


@contextlib.contextmanager
def _quiet():
    """Silence restorekit's one-line warnings (a model met a degradation outside its training): the
    checks feed synthetic degradations on purpose."""
    from .. import errors

    category = getattr(errors, "RestorekitWarning", None)
    with warnings.catch_warnings():
        if category is not None:
            warnings.simplefilter("ignore", category)
        yield


def run_one(subject: RestorerUnderCheck, check: Callable[[RestorerUnderCheck], str]) -> RestorerCheckResult:
    """Run ``check`` on ``subject``; an exception (building included) is the check's failure."""
    start = time.perf_counter()
    try:
        with _quiet():
            detail, status = check(subject) or "", "passed"
    except CheckSkipped as exc:
        detail, status = str(exc), "skipped"
    except AssertionError as exc:
        detail, status = str(exc).strip().splitlines()[0] if str(exc).strip() else "assertion failed", "failed"
    except Exception as exc:  # noqa: BLE001 - a check reports; it does not stop the others
        detail, status = _one_line(exc), "failed"
    return RestorerCheckResult(subject.label, check.__name__, status, detail, time.perf_counter() - start)


def run_restorer_checks(target: Any, *, registry: Any = None, checks: Iterable[str | Callable] | None = None,
                        **params: Any) -> list[RestorerCheckResult]:
    """Run the checks on one restorer and return every result (nothing raised for a failure).

    See :func:`check_restorer` for the arguments.
    """
    subject = target if isinstance(target, RestorerUnderCheck) else RestorerUnderCheck(target, params, registry)
    return [run_one(subject, check) for check in select_checks(checks)]


def check_restorer(name_or_class: Any, *, registry: Any = None, checks: Iterable[str | Callable] | None = None,
                   **params: Any) -> list[RestorerCheckResult]:
    """Check a restorer against the restorer contract (see the module docstring for the checks).

    Parameters
    ----------
    name_or_class : str, Restorer subclass or Restorer
        A registered restorer's name (or a pipeline ``"a+b"``), a class, or a built instance.
    registry : Registry, optional
        Where a name is looked up (the default registry otherwise).
    checks : iterable of str or callable, optional
        Only these checks (names with or without ``check_``); all of :data:`RESTORER_CHECKS` by default.
    **params
        Parameters the restorer is built with (``snr="auto"``; ``"wiener.snr"`` for a pipeline
        step: pass those as ``**{"wiener.snr": "auto"}``).

    Returns
    -------
    list of RestorerCheckResult
        One per check, passed or skipped (with the reason).

    Raises
    ------
    RestorerCheckError
        When a check failed; the message names every failed check with its one-line reason.
    """
    results = run_restorer_checks(name_or_class, registry=registry, checks=checks, **params)
    failed = [r for r in results if not r.passed]
    if failed:
        label = results[0].restorer
        lines = [f"{len(failed)} of {len(results)} restorer checks failed for {label!r}:"]
        lines += [f"  {r.check}: {r.detail}" for r in failed]
        raise RestorerCheckError("\n".join(lines), results)
    return results


class _PytestCheck:
    """One check as a pytest test calls it: ``check(restorer)``; a skip becomes ``pytest.skip``."""

    def __init__(self, check: Callable[[RestorerUnderCheck], str]) -> None:
        self.check = check
        self.__name__ = check.__name__

    def __call__(self, subject: RestorerUnderCheck) -> str:
        import pytest

        try:
            return self.check(subject)
        except CheckSkipped as exc:
            pytest.skip(f"{subject.label}: {exc}")

    def __repr__(self) -> str:
        return self.__name__


def parametrize_with_checks(targets: Iterable[Any], *, registry: Any = None,
                            checks: Iterable[str | Callable] | None = None):
    """A ``pytest.mark.parametrize`` giving one test per (restorer, check).

    Parameters
    ----------
    targets : iterable
        Registered names, Restorer subclasses or instances, or ``(name_or_class, params)`` pairs.
    registry : Registry, optional
        Where names are looked up (the default registry otherwise).
    checks : iterable of str or callable, optional
        Only these checks (all by default).

    Returns
    -------
    pytest.MarkDecorator
        Parametrizes the arguments ``restorer`` (a :class:`RestorerUnderCheck`, built once on the
        first check that needs it) and ``check``; the test body is ``check(restorer)``. Test ids
        read ``name-check_gray``. Nothing is built at collection time.

    Examples
    --------
    ::

        @parametrize_with_checks(["my-restorer", ("my-restorer", {"strength": 2.0})])
        def test_contract(restorer, check):
            check(restorer)
    """
    import pytest

    subjects = []
    for target in targets:
        if isinstance(target, tuple):
            subjects.append(RestorerUnderCheck(target[0], dict(target[1]), registry))
        else:
            subjects.append(RestorerUnderCheck(target, None, registry))
    selected = [_PytestCheck(c) for c in select_checks(checks)]
    cases = [(s, c) for s in subjects for c in selected]
    return pytest.mark.parametrize("restorer, check", cases, ids=[f"{s.label}-{c.__name__}" for s, c in cases])
