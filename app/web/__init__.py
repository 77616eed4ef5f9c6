"""What every blueprint shares over HTTP, below the views.

- ``security``: security headers, and who is making a request (completion records).
- ``request_body``: request bodies are exactly what the client declared (WSGI middleware).
- ``url_checks``: ids in range and no NUL in URLs, before any view.
- ``ratelimit`` (with ``ratelimit_storage``): rate limits on the API and callback URLs.
- ``templating``: template filters.
"""
