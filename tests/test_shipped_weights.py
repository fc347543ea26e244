"""The ResNet-20 and ViT weights shipped in workloads/weights: found, loaded, as accurate as recorded."""

from __future__ import annotations

import pytest
import torch

from workloads import get_workload
from workloads.checkpoints import load_checkpoint
from workloads.cifar import SHIPPED_WEIGHTS

pytestmark = pytest.mark.cifar

# digits and the binarized networks (bnn_*-<weights key>.pt) have tests of their own.
SHIPPED = sorted(
    p.stem
    for p in SHIPPED_WEIGHTS.glob("*.pt")
    if p.stem != "digits" and not p.stem.startswith("bnn_")
)


def test_weights_are_shipped_for_the_residual_and_attention_workloads():
    assert {"resnet20", "vit_small"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_and_match_their_recorded_accuracy(name, cifar_root):
    workload = get_workload(name)
    assert workload.default_checkpoint() == SHIPPED_WEIGHTS / f"{name}.pt"  # empty test cache
    payload = load_checkpoint(SHIPPED_WEIGHTS / f"{name}.pt")
    recorded = float(payload["test_acc"])
    assert payload["train_config"]["epochs"] == workload.default_recipe().epochs
    model = workload.load_model()
    x, y = workload.dataset("test", limit=1000)
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    # 1,000 of the 10,000 test images: within 5 standard errors of the recorded accuracy.
    se = (recorded * (1 - recorded) / len(y)) ** 0.5
    assert abs(acc - recorded) < 5 * se, (acc, recorded)
    assert acc > 0.5
