"""Hypothesis settings for the property tests: no per-example deadline (the first example
of a run pays for imports and template compilation), and the too_slow health check off
because scenario graphs are built with many draws. Each test sets its own max_examples
so the whole directory stays well under 30 s."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "scenaria",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("scenaria")
