"""What stands between a decision and a run: approvals, grants, halts and locks.

Each guard keeps its records in ``autoops.state`` and reads decisions from
``autoops.core``; none of them runs anything.
"""
