"""Studies built on the experiment machinery (binarized networks).

A study config is a TOML file with a ``[study]`` table naming its kind (``kind = "bnn"``);
``memsim run`` reads :func:`study_kind` to send it to the study instead of the accuracy sweep.
Its points go through the same executor and results store as every experiment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Study kinds ``memsim run`` knows, with what each runs.
STUDY_KINDS = {"bnn": "binarized networks in RRAM: BER tolerance, error-aware training, energy"}


def is_search_config(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a mixed-policy search config (it has a ``[search]`` table)."""
    from memsim.config import load_toml
    from memsim.experiment.config import resolve_config

    source = resolve_config(path)
    return source.is_file() and "search" in load_toml(source)


def study_kind(path: str | os.PathLike | None) -> str | None:
    """The ``[study] kind`` of a config file, or None for a plain experiment config.

    Raises
    ------
    ConfigError
        The ``study`` entry is not a table with a known ``kind``.
    """
    from memsim.config import ConfigError, load_toml
    from memsim.experiment.config import resolve_config

    source = resolve_config(path)
    if not source.is_file():
        return None  # the experiment loader reports the missing file
    study = load_toml(source).get("study")
    if study is None:
        return None
    kind = study.get("kind") if isinstance(study, Mapping) else None
    if kind not in STUDY_KINDS:
        raise ConfigError(
            f"'study.kind' in {source} must be one of {', '.join(STUDY_KINDS)}. Got {kind!r}."
        )
    return kind
