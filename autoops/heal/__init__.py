"""Self-healing runbooks: which fix a finding calls for, decided before anything runs.

``runbooks`` loads and checks ``runbooks/*.yml`` (each a match, catalog steps and a circuit
breaker); ``matcher`` picks the runbook for a finding and says, step by step, what would
run or why it would not. Both are pure over loaded data; the steps themselves only ever
run as catalog actions through the gate (``services``). Imports ``core`` (the catalog)
and the foundation only.
"""
