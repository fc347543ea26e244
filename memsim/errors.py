"""Errors of a run that are not bad input, and of its output folder, with no heavy imports (the
CLI catches them to print one line instead of a traceback)."""

from __future__ import annotations


class ResultsError(ValueError):
    """An output folder cannot be used: another experiment's results, not writable, corrupt."""


class WorkerDied(RuntimeError):
    """Worker processes died (killed, out of memory, their node lost) while one point was in
    flight, more often than a run retries. Points that finished are kept; a re-run resumes."""


class WorkerStartFailed(RuntimeError):
    """A worker could not start where it runs (memsim not importable there, say): every worker
    there would fail the same way, so nothing is retried."""


def describe_task(task: object) -> str:
    """A task as an error names it: ``point <id>`` for sweep points, else its ``repr``."""
    ident = getattr(task, "id", None)
    return f"point {ident}" if isinstance(ident, str) else repr(task)
