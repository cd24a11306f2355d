"""Execution: the worker that drives ansible-runner and the processes it leaves.

The only package that imports ``ansible_runner``. It knows nothing of policy: it gets
a plan that was already decided and reports what happened, event by event.
"""
