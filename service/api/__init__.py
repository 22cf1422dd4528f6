"""The JSON API under /api/v1: thin handlers that parse, call a service function and answer."""
