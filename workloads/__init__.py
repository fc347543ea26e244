"""Workloads: networks, their data and their trained weights (the first stage of memsim).

``get_workload(name, **options)`` builds a registered workload; ``WORKLOADS.names()`` lists
them. Built in: ``digits`` (the embedded default: scikit-learn's 8×8 digits, a small CNN
trained on first use and cached), ``vgg_A``/``vgg_B``/``vgg_D``/``vgg_E`` (VGG with batch norm
on CIFAR-10) and ``resnet18_cifar`` (torchvision's ResNet-18, to show that any module wraps).
Wrap your own network with :func:`workloads.generic.wrap` or register it with
:func:`workloads.generic.register` or the ``memsim.workloads`` entry-point group.
"""

from workloads import digits, generic, vgg  # noqa: F401  (registration side effects)
from workloads.base import WORKLOADS, Workload, get_workload

#: The workload memsim uses when none is named (runs offline in seconds).
DEFAULT_WORKLOAD = "digits"

__all__ = ["DEFAULT_WORKLOAD", "WORKLOADS", "Workload", "get_workload"]
