"""Logging and metrics singletons (Powertools): JSON logs, CloudWatch embedded metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="scenaria")
metrics = Metrics(namespace="Scenaria", service="scenaria")
