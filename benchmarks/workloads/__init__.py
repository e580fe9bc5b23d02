"""Workflow modules the side-by-side benchmark (``benchmarks/run.py``) runs.

``rappelx_flows`` is imported by ``rappelx workers``; ``dbos_flows`` by the DBOS side.
Both define the same workloads, each written the way its engine expects.
"""
