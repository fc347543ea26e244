"""The ``compose`` policy: a list of stages applied together (docs/design.md §5, "policies compose").

Each stage decides one slot of a storage spec (:mod:`policies.stage`); ``Compose`` folds them
in order, so ``Compose((FormatChange("int8"), WriteVerify(2)))`` stores int8 codes written
with verify, and ``[sram_exponent, ecc_secded]`` keeps sign and exponent in SRAM and protects
the mantissa bits with SECDED codewords. Two stages deciding the same slot, or a combination
that cannot store the format (``sram_exponent`` after ``format(to=int8)``), raise
``ValueError`` naming both policies. Composites nest.

From TOML: ``{kind = "compose", stages = [{kind = "format", to = "int8"}, "write_verify"]}``,
or simply a list (see :func:`policies.get_policy`).
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.stage import Stage, StorageSpec, register


@register("compose")
@dataclass(frozen=True)
class Compose(Stage):
    """Several stages at once.

    Parameters
    ----------
    stages : tuple of Stage
        The stages, each deciding a different slot.
    """

    stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, Stage):
                raise TypeError(
                    f"Stage {i} of compose must be a composable policy (a policies.stage.Stage). "
                    f"Got {stage!r}: policies that compute their own channel and plan do not compose."
                )
        # Report conflicts at construction, naming both policies; a fixed stored format is
        # checked against the other stages right away (e.g. sram_exponent after int8).
        spec = self.configure(StorageSpec())
        if spec.format is not None:
            spec.validate(spec.format.to)

    def configure(self, spec: StorageSpec) -> StorageSpec:
        for stage in self.stages:
            spec = stage.configure(spec)
        return spec

    def describe(self) -> str:
        return " + ".join(s.describe() for s in self.stages) if self.stages else "baseline"
