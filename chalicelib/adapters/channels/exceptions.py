"""What a channel provider's failure means to the channel worker: try again, or give up.

Every adapter of this package raises `DeliveryError` and nothing else for a message that
did not go out, so the worker decides with one attribute: `retryable` (throttling, a
provider's 5xx, a connection that could not be made) returns the message to its queue;
anything else (a rejected address, an unverified sender, a blocked URL) fails the
message at once. `Unanswered` is neither: the request left, and no answer came back (a
read timeout, a connection dropped mid-call), so whether the provider took the message
is unknown.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError


class DeliveryError(Exception):
    """A message the provider did not take. `retryable`: whether sending it again later
    may succeed. `status`: the provider's HTTP status, when it answered with one."""

    def __init__(self, message: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class Gone(DeliveryError):
    """A Web Push subscription its push service reports gone (404 or 410): the browser
    unsubscribed or the subscription expired. Never retryable; the caller may forget it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, retryable=False, status=status)


class Unanswered(DeliveryError):
    """A request that may have reached the provider, without an answer: the message may or
    may not have been taken. `retryable` for a webhook call, which SPEC retries after a
    timeout; the channel worker never sends a message again on it blind (it asks the
    provider's own record, where there is one)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


# Error codes of SES, SNS and SSM that mean "not now" rather than "never".
RETRYABLE_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SendingPausedException",
        "KMSThrottling",
        "KMSThrottlingException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
    }
)


def from_aws(error: BotoCoreError | ClientError, action: str) -> DeliveryError:
    """A boto3 failure as a DeliveryError: throttling, a 5xx, a connection or endpoint
    failure may pass; a refusal (rejected message, bad parameter, unverified identity,
    suspended account) will not; a request sent without an answer is `Unanswered`."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_AWS_CODES or (
            isinstance(status, int) and (status >= 500 or status == 429)
        )
        detail = str(error.response.get("Error", {}).get("Message", "")) or code
        return DeliveryError(
            f"{action}: {code}: {detail}",
            retryable=retryable,
            status=status if isinstance(status, int) else None,
        )
    if isinstance(error, HTTPClientError):  # sent, then a read timeout or a dropped connection
        return Unanswered(f"{action}: no answer: {error}")
    retryable = isinstance(error, BotoConnectionError)  # no connection: nothing was sent
    return DeliveryError(f"{action}: {error}", retryable=retryable)
