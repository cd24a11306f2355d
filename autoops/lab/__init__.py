"""The lab: disposable SSH hosts in local Docker containers, for trying actions and tests.

It imports ``autoops.settings`` and ``autoops.common`` only: the run path never needs it.
"""
