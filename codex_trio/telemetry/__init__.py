"""Operator data: one record per request (usage accounting, request log, Prometheus metrics) and client keys.

The request path only touches this package through `recorder.current_recorder()` (the dispatcher) and the
hooks `routes.register_telemetry` installs on the apps; everything slow (SQLite) happens in the background
writer, once a second.
"""
