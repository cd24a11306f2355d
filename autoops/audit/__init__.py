"""The append-only, hash-chained audit log and its off-host witness.

It imports ``autoops.state`` (for the chain anchor) and ``autoops.common``, nothing else.
"""
