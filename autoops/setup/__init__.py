"""Setting autoops up: service mode (a sudo boundary) and ``autoops init`` of an ops repository.

Runs once, as root or as the operator, never on the run path; it imports
``autoops.settings`` and ``autoops.common`` only.
"""
