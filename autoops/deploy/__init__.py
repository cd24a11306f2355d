"""Deploys that prove themselves: reading a rollout's outcome, and the promotion gate.

What runs on the hosts (releases, verification, the staged rollout and its automatic
rollback) is the ``deploy`` role and ``playbooks/deploy.yml``; this package reads what
they report (:mod:`.rollout`) and decides whether a revision may go on to the next
environment (:mod:`.promotion`). Both are pure: the services feed them records.
"""
