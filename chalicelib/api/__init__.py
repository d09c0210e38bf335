"""The HTTP API (SPEC §3): Chalice blueprints by concern, errors as RFC 9457 problems."""
