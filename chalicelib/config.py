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
    "api_keys",
    "products",
)
QUEUES = ("events", "steps", "segments", "email", "sms", "push", "webhook", "feedback")
CHANNEL_QUEUES = {"email": "email", "sms": "sms", "push": "push", "webhook": "webhook"}


def resource_name(stage: str, name: str) -> str:
    """`scenaria-<stage>-<name>`: the physical name of a table or queue."""
    return f"{APP}-{stage}-{name}"


def dead_letter_name(queue: str) -> str:
    """The dead-letter queue of a queue: `events` → `events-dlq`."""
    return f"{queue}-dlq"


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint: str | None  # another AWS endpoint (a moto or LocalStack server); None on AWS
    api_key: str | None  # locally from the environment; on AWS read from SSM (api_key_parameter)
    api_key_parameter: str | None
    precise_delays: bool  # send pauses of 15 minutes or less with SQS DelaySeconds too
    timer_shards: int
    public_url: str  # the API's base URL, for tracked links and the open pixel in e-mails
    email_from: str  # the stack's sender address (a verified SES identity)
    vapid_private_key: str | None  # Web Push signing key (PEM or base64url DER); locally generated
    vapid_key_parameter: str | None  # on AWS: an SSM SecureString holding that key
    vapid_subject: str  # the `sub` claim of VAPID tokens: a mailto: or https: contact
    webhook_allowed_networks: tuple[str, ...]  # private CIDRs webhook nodes may call
    ses_sandbox: bool  # SES is moto's, which publishes no events: the stack publishes Send's
    push_sink: str | None  # locally: the push sink every push goes to, whatever its endpoint

    def ses_configuration_set(self) -> str:
        """The SES configuration set whose event destination reports deliveries, opens, ..."""
        return resource_name(self.stage, "email")

    def feedback_topic(self) -> str:
        """The SNS topic SES publishes its delivery events to; the feedback queue listens."""
        return resource_name(self.stage, "feedback")

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
        public_url=env.get("SCENARIA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        email_from=env.get("SCENARIA_EMAIL_FROM", "no-reply@example.com"),
        vapid_private_key=env.get("SCENARIA_VAPID_PRIVATE_KEY") or None,
        vapid_key_parameter=env.get("SCENARIA_VAPID_KEY_PARAMETER") or None,
        vapid_subject=env.get("SCENARIA_VAPID_SUBJECT", "mailto:no-reply@example.com"),
        webhook_allowed_networks=tuple(
            n.strip() for n in env.get("SCENARIA_WEBHOOK_ALLOW", "").split(",") if n.strip()
        ),
        ses_sandbox=env.get("SCENARIA_SES_SANDBOX") == "1",
        push_sink=(env.get("SCENARIA_PUSH_SINK") or "").rstrip("/") or None,
    )
