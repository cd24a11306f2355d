"""Watching the fleet: findings with memory (and, as they land: checks, schedules, metrics).

``findings`` is pure (a reading in, a finding and a notice out); storing findings is
``autoops.state``'s, sending notices the notifiers'. It imports ``common`` only.
"""
