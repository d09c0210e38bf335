"""Scenarios as code (SPEC §9): `python -m chalicelib.cli validate | simulate | diff | apply DIR`.

A folder of scenario files (`*.json`, each a scenario document of SPEC §1, optionally with
an `id` naming the scenario it is on a stack) and their timelines (`<name>.timeline.json`
beside `<name>.json`) is checked, simulated, compared with a stack and applied to it, so
scenarios can live in Git and move from one tenant's stack to another. See docs/cli.md.
"""
