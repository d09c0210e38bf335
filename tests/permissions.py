"""What the stack's functions ask of AWS, and whether the packaged role allows it.

`Recorder` listens to every call the adapters' clients make (`chalicelib/adapters/aws.py`)
and keeps, for the calls the functions' own code makes, each IAM action with the
resource ARN that IAM authorises it on, as AWS documents it per operation (a
TransactWriteItems is the PutItem, UpdateItem, DeleteItem or ConditionCheckItem of each
of its items; a SendMessageBatch is SendMessage; a StartMessageMoveTask also receives
from and deletes from its source and sends to its destination). Calls made by the tests
themselves (a test reading a table through an adapter) and by the local stack's
stand-ins for AWS (`chalicelib/local`: the queue pumps are Lambda's event source
mappings, resource creation is CloudFormation's) are not the functions' and are left out.

`Role` is the execution role of the packaged template for the tests' stage, its
intrinsics resolved for the tests' account and region, and `Role.allows` evaluates its
policies as IAM does: an explicit Deny wins, else an Allow whose `Action` / `NotAction`,
`Resource` / `NotResource` and `Condition` all match; wildcards `*` and `?` in actions
(case-insensitively) and in ARNs (part by part; in the resource part they cross `/`).
"""

from __future__ import annotations

import copy
import fnmatch
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.adapters import aws
from chalicelib.config import settings

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
# Whose calls are the functions' (see Recorder._caller).
PROJECT = f"{ROOT}/"
APP = str(ROOT / "app.py")
FUNCTION_CODE = f"{ROOT / 'chalicelib'}/"
LOCAL_STACK = f"{ROOT / 'chalicelib' / 'local'}/"
SKIPPED = (f"{ROOT / 'chalicelib' / 'adapters'}/", f"{ROOT / '.venv'}/")
# IAM's service prefix where it differs from botocore's service name.
IAM_PREFIX = {"sesv2": "ses", "dynamodbstreams": "dynamodb"}
# Batch operations IAM authorises as the single one.
AS_SINGLE = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Request:
    """One action on one resource, as IAM evaluates it, with its condition keys."""

    action: str  # e.g. dynamodb:GetItem
    resource: str  # an ARN, or "*" for actions on no resource (an SMS to a phone number)
    context: tuple[tuple[str, str], ...] = ()
    # Where AWS authorises on whichever of several resources applies (SES: the sender's
    # address identity if verified, else its domain's), those others.
    alternatives: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.action} on {' or '.join((self.resource, *self.alternatives))}"


def requests_of(service: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
    """What IAM authorises for one call: its action(s) and resource ARN(s)."""
    region = settings().region
    prefix = IAM_PREFIX.get(service, service)

    def arn(kind: str, resource: str) -> str:
        return f"arn:{PARTITION}:{kind}:{region}:{ACCOUNT}:{resource}"

    def one(action: str, resource: str, *alternatives: str, **context: str) -> Request:
        return Request(f"{prefix}:{action}", resource, tuple(sorted(context.items())), alternatives)

    if service == "dynamodb":
        if operation == "TransactWriteItems" or operation == "TransactGetItems":
            return [
                one(TRANSACT_ACTIONS[kind], arn("dynamodb", f"table/{request['TableName']}"))
                for item in params["TransactItems"]
                for kind, request in item.items()
            ]
        if "RequestItems" in params:  # BatchGetItem, BatchWriteItem
            return [one(operation, arn("dynamodb", f"table/{t}")) for t in params["RequestItems"]]
        table = f"table/{params['TableName']}"
        if params.get("IndexName"):
            table += f"/index/{params['IndexName']}"
        return [one(operation, arn("dynamodb", table))]
    if service == "dynamodbstreams":
        return [one(operation, params.get("StreamArn", "*"))]
    if service == "sqs":
        if operation == "GetQueueUrl":
            owner = params.get("QueueOwnerAWSAccountId", ACCOUNT)
            queue = f"arn:{PARTITION}:sqs:{region}:{owner}:{params['QueueName']}"
        elif operation in ("StartMessageMoveTask", "ListMessageMoveTasks"):
            queue = params["SourceArn"]
        else:
            queue = _queue_arn(params["QueueUrl"], region)
        found = [one(AS_SINGLE.get((service, operation), operation), queue)]
        if operation == "StartMessageMoveTask":  # SQS moves the messages as the caller
            found += [one(action, queue) for action in _MOVE_SOURCE_ACTIONS]
            if params.get("DestinationArn"):
                found.append(one("SendMessage", params["DestinationArn"]))
        return found
    if service == "ssm":
        names = params.get("Names") or [params["Name"]]
        return [one(operation, arn("ssm", f"parameter/{name.lstrip('/')}")) for name in names]
    if service == "sesv2" and operation == "SendEmail":
        address = parseaddr(params["FromEmailAddress"])[1]
        identities = (
            arn("ses", f"identity/{address}"),
            arn("ses", f"identity/{address.split('@')[-1]}"),
        )
        found = [one("SendEmail", *identities, **{"ses:FromAddress": address})]
        if params.get("ConfigurationSetName"):
            found.append(
                one("SendEmail", arn("ses", f"configuration-set/{params['ConfigurationSetName']}"))
            )
        return found
    if service == "sns" and operation == "Publish":
        return [one("Publish", params.get("TopicArn") or params.get("TargetArn") or "*")]
    # Anything else: on no resource, which only a "*" grant allows; add it above instead.
    return [one(operation, "*")]


_MOVE_SOURCE_ACTIONS = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")


def _queue_arn(url: str, region: str) -> str:
    """`https://sqs.<region>.amazonaws.com/<account>/<name>` → the queue's ARN."""
    *_, owner, name = url.rstrip("/").split("/")
    return f"arn:{PARTITION}:sqs:{region}:{owner}:{name}"


@dataclass
class Recorder:
    """Every distinct request the functions' code made, with where it was made first."""

    seen: dict[Request, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _origins: dict[Any, str | None] = field(default_factory=dict)

    def __call__(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        where = self._caller()
        if where is None:
            return
        for request in requests_of(service, operation, params):
            if request not in self.seen:
                with self._lock:
                    self.seen.setdefault(request, where)

    def _caller(self) -> str | None:
        """`file:line` of the code that made the call, if that is the functions' code.

        The innermost frame of the project beyond the adapters decides (`app.py` or
        `chalicelib/`, not `chalicelib/local/`): a use case, a route or a handler calling
        an adapter is the functions'; a test calling an adapter, to look at a table or
        to put a message in a queue, is not. Its verdict is cached per code object.
        """
        frame: Any = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith(PROJECT) or filename.startswith(SKIPPED):
                frame = frame.f_back
                continue
            code = frame.f_code
            if code not in self._origins:
                ours = filename == APP or (
                    filename.startswith(FUNCTION_CODE) and not filename.startswith(LOCAL_STACK)
                )
                self._origins[code] = filename.removeprefix(PROJECT) if ours else None
            origin = self._origins[code]
            return None if origin is None else f"{origin}:{frame.f_lineno}"
        return None


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record the functions' AWS requests while the block runs."""
    recorder = Recorder()
    aws._listeners.append(recorder)
    try:
        yield recorder
    finally:
        aws._listeners.remove(recorder)


# --- the role ---------------------------------------------------------------------------


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's match of a Resource element: `*` alone matches everything; an ARN pattern
    matches the six parts of an ARN part by part (the resource part whole, `/` and all)."""
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return _glob(pattern, arn)
    return all(_glob(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


CONDITION_TESTS = {
    "StringEquals": lambda wanted, got: wanted == got,
    "StringLike": lambda wanted, got: _glob(wanted, got),
    "StringEqualsIgnoreCase": lambda wanted, got: wanted.lower() == got.lower(),
    "ArnEquals": lambda wanted, got: wanted == got,
    "ArnLike": arn_matches,
    "Bool": lambda wanted, got: str(wanted).lower() == got.lower(),
}


def conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """A statement's Condition block against the request's keys (keys are case-insensitive;
    a key the request lacks fails a positive test, passes a negated one and `...IfExists`)."""
    keys = {key.lower(): value for key, value in context.items()}
    for operator, tests in conditions.items():
        name = operator.removesuffix("IfExists")
        negated = "Not" in name
        base = name.replace("Not", "", 1) if negated else name
        if base not in CONDITION_TESTS:
            raise NotImplementedError(f"condition operator {operator} (add it to CONDITION_TESTS)")
        for key, wanted in tests.items():
            got = keys.get(key.lower())
            if got is None:
                if operator.endswith("IfExists") or negated:
                    continue
                return False
            hit = any(CONDITION_TESTS[base](str(w), got) for w in _listed(wanted))
            if hit == negated:
                return False
    return True


@dataclass(frozen=True)
class Role:
    """The function role's policy statements, resolved to plain strings."""

    statements: tuple[Mapping[str, Any], ...]

    def _applies(self, statement: Mapping[str, Any], request: Request) -> bool:
        if "Action" in statement:
            actions = any(_glob(a, request.action, True) for a in _listed(statement["Action"]))
        else:
            actions = not any(
                _glob(a, request.action, True) for a in _listed(statement["NotAction"])
            )
        if "Resource" in statement:
            resources = any(
                arn_matches(r, request.resource) for r in _listed(statement["Resource"])
            )
        else:
            resources = not any(
                arn_matches(r, request.resource) for r in _listed(statement["NotResource"])
            )
        return (
            actions
            and resources
            and conditions_hold(statement.get("Condition", {}), dict(request.context))
        )

    def allows(self, request: Request) -> bool:
        return any(
            self._allows_one(replace(request, resource=resource, alternatives=()))
            for resource in (request.resource, *request.alternatives)
        )

    def _allows_one(self, request: Request) -> bool:
        applying = [s for s in self.statements if self._applies(s, request)]
        if any(s["Effect"] == "Deny" for s in applying):
            return False
        return any(s["Effect"] == "Allow" for s in applying)


def resolve(value: Any, resources: Mapping[str, Any]) -> Any:
    """The template's intrinsics (`Fn::GetAtt`, `Fn::Sub`, `Ref`) as CloudFormation would
    resolve them in ACCOUNT and the tests' region (only what a role's policy uses)."""
    if isinstance(value, list):
        return [resolve(item, resources) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        return _attribute(logical, attribute, resources)
    if "Ref" in value:
        return _reference(value["Ref"], resources)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]

        def substitute(found: re.Match[str]) -> str:
            name = found.group(1)
            if "." in name:
                logical, attribute = name.split(".", 1)
                return _attribute(logical, attribute, resources)
            return _reference(name, resources)

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    return {key: resolve(item, resources) for key, item in value.items()}


def _reference(name: str, resources: Mapping[str, Any]) -> str:
    pseudo = {
        "AWS::Partition": PARTITION,
        "AWS::Region": settings().region,
        "AWS::AccountId": ACCOUNT,
    }
    if name in pseudo:
        return pseudo[name]
    resource = resources[name]
    properties = resource["Properties"]
    kind = resource["Type"]
    if kind == "AWS::SNS::Topic":
        return _arn("sns", properties["TopicName"])
    if kind == "AWS::SES::ConfigurationSet":
        return str(properties["Name"])
    raise NotImplementedError(f"Ref of a {kind} ({name})")


def _attribute(logical: str, attribute: str, resources: Mapping[str, Any]) -> str:
    resource = resources[logical]
    properties, kind = resource["Properties"], resource["Type"]
    if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
        return _arn("dynamodb", f"table/{properties['TableName']}")
    if kind == "AWS::SQS::Queue" and attribute == "Arn":
        return _arn("sqs", properties["QueueName"])
    if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
        return _arn("logs", f"log-group:{properties['LogGroupName']}:*")
    raise NotImplementedError(f"Fn::GetAtt {logical}.{attribute} of a {kind}")


def _arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{settings().region}:{ACCOUNT}:{resource}"


@cache
def packaged_role() -> Role:
    """The role of the packaged template for the tests' stage, with the tests' settings
    (the stage added to `.chalice/config.json` as docs/deploy.md tells)."""
    from infra.template import ROLE, load_config, merge_template

    config = settings()
    project = load_config()
    stage = copy.deepcopy(project["stages"]["tenant-example"])
    stage["environment_variables"] = {
        "SCENARIA_STAGE": config.stage,
        "SCENARIA_API_KEY_PARAMETER": f"/scenaria/{config.stage}/api-key",
        "SCENARIA_VAPID_KEY_PARAMETER": f"/scenaria/{config.stage}/vapid-private-key",
        "SCENARIA_EMAIL_FROM": config.email_from,
        "SCENARIA_PUBLIC_URL": config.public_url,
    }
    project["stages"][config.stage] = stage
    resources = merge_template(config.stage, project)["Resources"]
    policies = resources[ROLE]["Properties"]["Policies"]
    return Role(
        tuple(
            resolve(statement, resources)
            for policy in policies
            for statement in policy["PolicyDocument"]["Statement"]
        )
    )


def refused(recorder: Recorder, role: Role | None = None) -> list[str]:
    """Each recorded request the role would refuse, with where the code made it."""
    role = role or packaged_role()
    return sorted(
        f"{request} ({where})"
        for request, where in recorder.seen.items()
        if not role.allows(request)
    )
