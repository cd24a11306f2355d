"""Telling people: grouped messages, the Telegram and webhook notifiers, and a durable outbox.

A watch run's notices become at most two messages (new problems, recoveries); each is
put in the outbox (state.db) under an idempotency key before anything is sent, and
delivered from there, now or on a later run: never lost, never sent twice. It imports
``common``, ``state`` and ``watch``.
"""
