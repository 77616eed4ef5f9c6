"""Infrastructure: how Waitpoint runs, not what it does.

- ``database``: engine set-up, SQLite's writer queue, ``write_transaction``.
- ``scheduler``: the background timeout sweep. ``waiting``: long-poll wake-ups across
  processes (LISTEN/NOTIFY on PostgreSQL, ``data_version`` on SQLite).
- ``serve``: ``waitpoint serve`` on gunicorn; ``http_worker``: its worker class.
- ``metrics``, ``requestlog``: Prometheus metrics, request ids and JSON logs.
"""
