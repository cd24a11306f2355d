"""The process exit statuses: one enum, documented in the README."""

from enum import IntEnum


class ExitStatus(IntEnum):
    """What an autoops command tells its caller through its exit status."""

    OK = 0
    INTERNAL_ERROR = 1
    BAD_INPUT = 2
    DENIED = 3
    APPROVAL_REQUIRED = 4
    PLAYBOOK_FAILED = 5
    UNREACHABLE = 6
    HALTED = 7
    BUSY = 8
    INTERRUPTED = 130
