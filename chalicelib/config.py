"""The stack's configuration, read once from the environment.

On AWS, `.chalice/config.json` sets these per stage; the local stack sets them itself.
Every resource name carries the stage, so two tenants' stacks share nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

APP = "scenaria"

TABLES = (
    "scenarios",
    "segments",
    "profiles",
    "instances",
    "timers",
    "messages",
    "stats",
    "promo_codes",
    "idempotency",
)
QUEUES = ("events", "steps", "segments", "email", "sms", "push", "webhook")
CHANNEL_QUEUES = {"email": "email", "sms": "sms", "push": "push", "webhook": "webhook"}


def resource_name(stage: str, name: str) -> str:
    """`scenaria-<stage>-<name>`: the physical name of a table or queue."""
    return f"{APP}-{stage}-{name}"


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint: str | None  # the local stack's moto server; None on AWS
    api_key: str | None  # locally from the environment; on AWS read from SSM (api_key_parameter)
    api_key_parameter: str | None
    precise_delays: bool  # send pauses of 15 minutes or less with SQS DelaySeconds too
    timer_shards: int

    def table(self, name: str) -> str:
        return resource_name(self.stage, name)

    def queue(self, name: str) -> str:
        return resource_name(self.stage, name)


@cache
def settings() -> Settings:
    env = os.environ
    return Settings(
        stage=env.get("SCENARIA_STAGE", "local"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint=env.get("SCENARIA_AWS_ENDPOINT") or None,
        api_key=env.get("SCENARIA_API_KEY") or None,
        api_key_parameter=env.get("SCENARIA_API_KEY_PARAMETER") or None,
        precise_delays=env.get("SCENARIA_PRECISE_DELAYS", "1") == "1",
        timer_shards=int(env.get("SCENARIA_TIMER_SHARDS", "8")),
    )
