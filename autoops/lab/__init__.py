"""The lab: disposable SSH hosts in local Docker containers, for trying actions and tests."""
