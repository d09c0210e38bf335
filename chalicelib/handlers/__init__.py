"""Entry points: Chalice blueprints for queues, schedules, streams and HTTP routes."""
