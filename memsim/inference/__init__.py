"""Noisy inference: write points, the noisy network, int8 storage and persistent fault maps.

``taps`` finds the write points of a model, ``network`` runs it with every write passed
through a noise channel, ``int8`` is static post-training quantisation, and ``faults`` holds
per-cell fault maps for weights programmed once.
"""

from memsim.inference.network import INFERENCE_FORMATS, EvalResult, NoisyNetwork

__all__ = ["INFERENCE_FORMATS", "EvalResult", "NoisyNetwork"]
