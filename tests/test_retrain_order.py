"""``make weights`` re-trains a model made from another shipped model's weights after that model."""

from __future__ import annotations


def test_a_model_grown_from_a_shipped_one_is_retrained_after_it(load_benchmark):
    retrain = load_benchmark("retrain_weights")
    jobs = [("a-tuned", "python -m x --init-from a --export a-tuned", []), ("a", "python -m x --export a", []),
            ("b", "python -m y --init-from runs/b/checkpoint.pt", [])]
    order = [name for name, _, _ in retrain.in_training_order(jobs)]
    assert order.index("a") < order.index("a-tuned") and set(order) == {"a", "a-tuned", "b"}
    shipped = [name for name, _, _ in retrain.in_training_order(retrain.shipped())]
    assert shipped.index("drunet-color") < shipped.index("drunet-color-pnp")  # sorted by name it came first
