"""The domain: what Waitpoint is about, whoever asks (the API, the pages, the dashboard,
the CLI, the scheduler).

- ``lifecycle``: the only module that creates tokens or changes their status.
- ``token_list``: filtered, paginated token lists (the API's list; the cursors and
  status conditions the dashboard's board shares).
- ``capability``: the secret callback URLs. ``credentials``: API keys and random ids.
- ``accounts``: operators, their projects, login throttling.
- ``jsontext``, ``timeutil``: what a text or a JSON value may hold; one clock, one wire
  format for times, one grammar for durations.
"""
