"""Workloads: networks, their data and their trained weights (the first stage of memsim).

``get_workload(name, **options)`` builds a registered workload; ``WORKLOADS.names()`` lists
them. Built in: ``digits`` (the embedded default: scikit-learn's 8×8 digits, a small CNN
whose weights ship with it), ``vgg_A``/``vgg_B``/``vgg_D``/``vgg_E`` (VGG with batch norm
on CIFAR-10), ``resnet18_cifar`` (torchvision's ResNet-18, to show that any module wraps) and
the binarized networks of :mod:`workloads.bnn`. Wrap your own network with
:func:`workloads.generic.wrap`, register it with :func:`workloads.generic.register`, or declare
it in the ``memsim.workloads`` entry-point group.
"""

from workloads import bnn, digits, generic, resnet, vgg, vit  # noqa: F401  (importing registers them)
from workloads.base import WORKLOADS, Workload, get_workload

#: The workload memsim uses when none is named (runs offline in seconds).
DEFAULT_WORKLOAD = "digits"

__all__ = ["DEFAULT_WORKLOAD", "WORKLOADS", "Workload", "get_workload"]
