"""Use cases: load state through the adapters, run the engine, commit its effects."""
