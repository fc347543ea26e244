"""memsim: noisy-RRAM activation storage for neural networks, accuracy next to energy and latency.

Data flow (DESIGN §2): workload → write trace → policy → (noise channel → noisy inference →
accuracy) and (write operations → SimPy memory model → energy, latency) → joint report.
"""

__version__ = "0.1.0"
