"""``trackio:PATH``: Trackio's local project databases (see ``docs/backends/trackio.md``)."""
