"""No noise is made outside restorekit/degrade/ (issue 13): training and restoration share degrade's noise.

Every call that draws Gaussian or Poisson noise (``torch.randn``, ``randn_like``, ``normal``,
``normal_``, ``poisson``, ``np.random.normal``...) in ``restorekit/`` and ``plugins/`` must be in
``restorekit/degrade/`` (where :class:`~restorekit.degrade.Noise`, :class:`~restorekit.degrade.PoissonGaussian`
and :class:`~restorekit.degrade.DegradationSampler` draw it), or be on the allow-list below with the
reason it is not noise added to an image. Calls are found with ``ast``, so docstring examples do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The names of calls that draw noise.
NOISE_CALLS = {"randn", "randn_like", "normal", "normal_", "poisson", "standard_normal"}
#: (file, function or class the call is in) -> why it is not image noise.
ALLOWED = {
    ("restorekit/learned_denoiser.py", "sure_blend"):
        "the Monte-Carlo SURE divergence probe b (Ramani et al. 2008): a direction of finite differences, "
        "never added to the returned image",
    ("restorekit/estimate/noise.py", "_noise_quantile"):
        "unit white noise simulated once (seeded) to calibrate the texture threshold of the noise estimator",
    ("restorekit/testing/ops.py", "*"):
        "random inputs and cotangents of the operator gradient checks (restorekit.testing), not images",
}


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    owners: list[str] = []

    def visit(node, owner):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and owner == "":
            owner = node.name
        if isinstance(node, ast.Call):
            func = node.func
            # torch.randn(...), x.normal_(), rng.standard_normal(...); a bare name only for randn / randn_like
            # (a local function called normal(), e.g. normal equations, draws nothing)
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in NOISE_CALLS and (isinstance(func, ast.Attribute) or name in ("randn", "randn_like")):
                owners.append((node.lineno, name, owner))
        for child in ast.iter_child_nodes(node):
            visit(child, owner)

    visit(tree, "")
    return owners


def noise_calls_outside_degrade() -> list[str]:
    """``file:line name (in owner)`` of every noise-drawing call outside restorekit/degrade/ not allowed."""
    found = []
    for folder in ("restorekit", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("restorekit/degrade/"):
                continue
            for line, name, owner in _calls(path):
                if (rel, owner) in ALLOWED or (rel, "*") in ALLOWED:
                    continue
                found.append(f"{rel}:{line} {name}() in {owner or 'module'}")
    return found


def test_no_noise_is_made_outside_degrade():
    found = noise_calls_outside_degrade()
    assert not found, ("noise drawn outside restorekit/degrade/ (use a degrade operator or a DegradationSampler, or "
                       "allow-list it with the reason it is not image noise): " + "; ".join(found))


def test_the_scan_finds_a_noise_maker(tmp_path):
    path = tmp_path / "maker.py"
    path.write_text('"""\n>>> torch.randn(3)\n"""\nimport torch\n\n\ndef make(x):\n    return x + 0.1 * torch.randn_like(x)\n'
                    '\n\ndef solve(normal, k):\n    return normal(k) + k.normal_()\n')
    assert _calls(path) == [(8, "randn_like", "make"), (12, "normal_", "solve")]


def test_the_allow_list_names_calls_that_exist():
    for (rel, owner), reason in ALLOWED.items():
        calls = _calls(ROOT / rel)
        assert reason and any(owner in ("*", o) for _, _, o in calls), f"{rel}: no noise call in {owner}"
