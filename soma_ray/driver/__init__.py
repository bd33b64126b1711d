"""The driver: the one process that holds a wallet's key and signs (a named, detached Ray actor).

`Driver` is the plain object (durable state in SQLite, reconciliation with the chain,
submissions, commit → reveal, claims); `actor.py` wraps it for Ray.
"""
