"""Write traces: one record per tensor written by one inference (``records``), and capture
from a real model (``capture.trace_model``)."""

from memsim.trace.records import ROLES, Trace, TraceError, WriteRecord, make_trace

__all__ = ["ROLES", "Trace", "TraceError", "WriteRecord", "make_trace"]
