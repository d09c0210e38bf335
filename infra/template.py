"""The merge template that `chalice package` folds into a tenant stack's CloudFormation.

    python -m infra.template --stage tenant-example [--output build/merge-template.json]

Chalice generates the functions, their event sources and the REST API; this adds what
Chalice cannot express, all built from `infra/resources.py` and the Chalice app itself:

- every table (on-demand, its indexes, TTL, the timers stream, point-in-time recovery)
  and every queue with its dead-letter queue;
- on every SQS event source `FunctionResponseTypes: [ReportBatchItemFailures]` and the
  ARN of the queue resource (so the mapping is created after its queue), and on the
  DynamoDB stream source the real stream of the timers table instead of the
  placeholder ARN in `chalicelib/handlers/timers.py`;
- the delivery feedback path: an SES configuration set whose event destination
  publishes to an SNS topic, subscribed by the `feedback` queue;
- API Gateway answers of its own (an unknown route, a throttled call) as RFC 9457
  problems, like every answer of the app;
- one execution role for every function, allowed exactly what the code does on this
  stage's tables, indexes, stream, queues, dead-letter queues (their depth and redrive),
  parameters, sender identity, configuration set and log groups: no wildcard across the stage's resources, so a stack never
  reaches another tenant's; SMS are published to phone numbers, never to topics;
- one log group per function (named as Lambda names it, with a retention), so the
  role needs no `logs:CreateLogGroup` and logs do not pile up forever;
- the stage's names and settings in every function's environment, and the function
  names `scenaria-<stage>-<handler>` that `chalice deploy` would give them.

`.chalice/config.json` turns off Chalice's own IAM (`manage_iam_role: false`); the
`iam_role_arn` it must give Chalice is a placeholder that this template replaces on
every function. Chalice's deep merge replaces lists and scalars, merges objects, so an
intrinsic is overridden with the same function name (`Fn::Sub` over `Fn::Sub`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from chalicelib.config import APP, resource_name
from infra.resources import (
    QUEUE_DEFINITIONS,
    TABLES,
    Queue,
    Table,
    create_table_arguments,
    dead_letter_name,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / ".chalice" / "config.json"

# Lower case, digits and hyphens: valid in every table, queue, function, log group and
# parameter name, and short enough that `scenaria-<stage>-schedule_tick` fits Lambda's 64.
STAGE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
LOCAL_STAGE = "local"
ROLE = "ScenariaFunctionRole"
DEFAULT_LOG_RETENTION_DAYS = 30
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's longest
STAGE_TAG = "scenaria:stage"

# What the adapters call (chalicelib/adapters/dynamo.py), and DescribeTable, whose item
# count sizes a segment fan-out (runtime/schedules.py); TransactWriteItems is authorised
# as the Put/Update/Delete/ConditionCheck it contains (a merge checks `into` is not merged
# itself, runtime/merges.py). tests/integration/test_permissions.py checks every
# request the tests make against this role.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
INDEX_ACTIONS = ("dynamodb:Query", "dynamodb:Scan")
STREAM_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
# Sending (adapters/queues.py) and what Lambda's SQS event source needs of the role.
QUEUE_ACTIONS = (
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
)
# Reading a dead-letter queue's depth and redriving it (runtime/dead_letters.py): SQS's
# message move task receives and deletes on the dead-letter queue as the caller, and
# sends to the queue, which QUEUE_ACTIONS allows. Nothing else sends to a dead-letter queue.
DEAD_LETTER_ACTIONS = (
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:StartMessageMoveTask",
)
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# What SES reports to the feedback topic (chalicelib/runtime/ses_events.py reads them).
# "send" is SES's record that it took a message: the channel worker settles a send whose
# call got no answer by it (chalicelib/runtime/channels.py).
SES_EVENT_TYPES = (
    "send",
    "reject",
    "bounce",
    "complaint",
    "delivery",
    "open",
    "click",
    "renderingFailure",
    "subscription",
)
# Settings a tenant's stage must give: who e-mails come from, where tracked links point.
REQUIRED_STAGE_SETTINGS = ("SCENARIA_EMAIL_FROM", "SCENARIA_PUBLIC_URL")
PROBLEM = (
    '{"type": "about:blank", "title": "$context.error.responseType", '
    '"detail": $context.error.messageString}'
)

# Only deletions by DynamoDB's TTL service reach the timer_expired function.
TTL_DELETIONS = {
    "Filters": [
        {
            "Pattern": json.dumps(
                {
                    "eventName": ["REMOVE"],
                    "userIdentity": {
                        "type": ["Service"],
                        "principalId": ["dynamodb.amazonaws.com"],
                    },
                }
            )
        }
    ]
}


class TemplateError(Exception):
    """The app, its config or the resources do not fit together; the message says how."""


def api_key_parameter(stage: str) -> str:
    """The SSM SecureString parameter holding a stage's API key."""
    return f"/{APP}/{stage}/api-key"


def vapid_key_parameter(stage: str) -> str:
    """The SSM SecureString parameter holding a stage's Web Push (VAPID) private key."""
    return f"/{APP}/{stage}/vapid-private-key"


def logical_id(name: str) -> str:
    """`promo_codes` → `PromoCodes` (in the style of Chalice's `to_cfn_resource_name`)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", name) if part)


def table_id(table: Table) -> str:
    return f"{logical_id(table.name)}Table"


def queue_id(queue: Queue) -> str:
    return f"{logical_id(queue.name)}Queue"


def dead_letter_id(queue: Queue) -> str:
    return f"{logical_id(queue.name)}DeadLetterQueue"


# --- the Chalice side --------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """One Lambda function of the packaged app, as Chalice names it in the template."""

    logical_id: str  # e.g. HandleEvents, APIHandler
    function_name: str  # scenaria-<stage>-<handler>
    environment: Mapping[str, str]
    log_retention_days: int
    sqs_event: str | None = None  # logical id of its SQS event, e.g. HandleEventsSqsEventSource
    queue: Queue | None = None
    stream_event: str | None = None  # logical id of its DynamoDB stream event
    stream_table: Table | None = None


def load_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def chalice_config(stage: str, project_config: Mapping[str, Any]) -> Any:
    """Chalice's `Config` for a stage, as `chalice package` builds it, from `project_config`
    (the contents of `.chalice/config.json`). Loading the app leaves `os.environ` alone."""
    from chalice.cli.factory import CLIFactory

    class Factory(CLIFactory):
        def load_project_config(self) -> dict[str, Any]:
            return dict(project_config)

    factory = Factory(project_dir=str(ROOT), environ=dict(os.environ))
    return factory.create_config_obj(chalice_stage_name=stage)


def chalice_functions(stage: str, project_config: Mapping[str, Any]) -> list[Function]:
    """The functions `chalice package --stage STAGE` generates, with their event sources.

    Built with Chalice's own application graph, so logical ids and names are the ones
    its template generator uses.
    """
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder
    from chalice.utils import to_cfn_resource_name

    config = chalice_config(stage, project_config)
    application = ApplicationGraphBuilder().build(config, stage)
    retention = config.log_retention_in_days or DEFAULT_LOG_RETENTION_DAYS

    def function(model: Any, lid: str | None = None, **extra: Any) -> Function:
        return Function(
            logical_id=lid or to_cfn_resource_name(model.resource_name),
            function_name=model.function_name,
            environment=dict(model.environment_variables),
            log_retention_days=retention,
            **extra,
        )

    functions: list[Function] = []
    for resource in application.resources:
        if isinstance(resource, models.SQSEventSource):
            if not isinstance(resource.queue, str):
                raise TemplateError(f"{resource.resource_name}: consume queues by name")
            functions.append(
                function(
                    resource.lambda_function,
                    sqs_event=to_cfn_resource_name(resource.resource_name),
                    queue=_queue_named(resource.queue),
                )
            )
        elif isinstance(resource, models.DynamoDBEventSource):
            functions.append(
                function(
                    resource.lambda_function,
                    stream_event=to_cfn_resource_name(resource.resource_name),
                    stream_table=_table_of_stream(resource.stream_arn),
                )
            )
        elif isinstance(resource, models.RestAPI):
            # Chalice renames the REST API's handler to `APIHandler` in SAM templates.
            functions.append(function(resource.lambda_function, "APIHandler"))
        elif isinstance(resource, models.ScheduledEvent | models.CloudWatchEvent):
            functions.append(function(resource.lambda_function))
        elif isinstance(resource, models.LambdaFunction):
            functions.append(function(resource))
        else:
            raise TemplateError(
                f"{type(resource).__name__} {getattr(resource, 'resource_name', '')!r}: "
                "infra/template.py does not know this kind of Chalice resource yet"
            )
    ids = [function.logical_id for function in functions]
    if len(set(ids)) != len(ids):
        raise TemplateError(f"a function with two event sources: {sorted(ids)}")
    return functions


def _stage_free_name(physical: str) -> str:
    """`scenaria-<any stage>-<name>` → `<name>`: the app may have been imported under
    another stage than the one being packaged (names carry no hyphen of their own)."""
    prefix, _, name = physical.rpartition("-")
    if not prefix.startswith(f"{APP}-"):
        raise TemplateError(f"{physical!r} is not a {APP} resource name")
    return name


def _queue_named(physical: str) -> Queue:
    name = _stage_free_name(physical)
    for queue in QUEUE_DEFINITIONS:
        if queue.name == name:
            return queue
    raise TemplateError(f"the app consumes {physical!r}, which infra/resources.py does not define")


def _table_of_stream(stream_arn: str) -> Table:
    found = re.search(r":table/([^/]+)/stream/", stream_arn)
    name = _stage_free_name(found.group(1)) if found else ""
    for table in TABLES:
        if table.name == name:
            if not table.stream:
                raise TemplateError(f"the app reads the stream of {name!r}, which has none")
            return table
    raise TemplateError(f"the app reads {stream_arn!r}, not a table of infra/resources.py")


# --- the template ---------------------------------------------------------------------


def merge_template(stage: str, project_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The merge template for `chalice package --stage STAGE` (a JSON-able dict)."""
    if not STAGE_PATTERN.match(stage) or stage == LOCAL_STAGE:
        raise TemplateError(
            f"stage {stage!r}: use up to 32 lower-case letters, digits and inner hyphens "
            f"(and not {LOCAL_STAGE!r}, the local stack's)"
        )
    project_config = load_config() if project_config is None else project_config
    if stage not in project_config.get("stages", {}):
        raise TemplateError(f"stage {stage!r} is not in .chalice/config.json (see docs/deploy.md)")
    if project_config.get("manage_iam_role", True) or project_config.get("autogen_policy", True):
        raise TemplateError(
            ".chalice/config.json must set manage_iam_role and autogen_policy to false: "
            "the execution role comes from infra/template.py"
        )
    environment = {
        "SCENARIA_STAGE": stage,
        "SCENARIA_API_KEY_PARAMETER": api_key_parameter(stage),
        "SCENARIA_VAPID_KEY_PARAMETER": vapid_key_parameter(stage),
    }
    functions = chalice_functions(stage, project_config)
    for function in functions:
        for key, value in environment.items():
            if function.environment.get(key, value) != value:
                raise TemplateError(
                    f".chalice/config.json, stage {stage!r}: {key} is "
                    f"{function.environment[key]!r}, it must be {value!r}"
                )
        for key in REQUIRED_STAGE_SETTINGS:
            if not function.environment.get(key):
                raise TemplateError(
                    f".chalice/config.json, stage {stage!r}: set {key} (see docs/deploy.md)"
                )
    sender = functions[0].environment["SCENARIA_EMAIL_FROM"]

    resources: dict[str, Any] = {}
    for table in TABLES:
        resources[table_id(table)] = table_resource(table, stage)
    for queue in QUEUE_DEFINITIONS:
        resources[dead_letter_id(queue)] = dead_letter_resource(queue, stage)
        resources[queue_id(queue)] = queue_resource(queue, stage)
    for function in functions:
        resources[f"{function.logical_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{function.function_name}",
                "RetentionInDays": function.log_retention_days,
            },
        }
        resources[function.logical_id] = function_override(function, environment)
    resources.update(feedback_resources(stage))
    resources.update(gateway_responses())
    resources[ROLE] = execution_role(stage, functions, sender)
    return {
        "Description": f"Scenaria, stage {stage}: one tenant's journeys (chalice package)",
        "Resources": resources,
        "Outputs": {
            "ApiKeyParameter": {"Value": api_key_parameter(stage)},
            "VapidKeyParameter": {"Value": vapid_key_parameter(stage)},
            **{
                f"{dead_letter_id(queue)}Url": {"Value": {"Ref": dead_letter_id(queue)}}
                for queue in QUEUE_DEFINITIONS
            },
        },
    }


def _tags(stage: str) -> list[dict[str, str]]:
    return [{"Key": STAGE_TAG, "Value": stage}]


def table_resource(table: Table, stage: str) -> dict[str, Any]:
    arguments = create_table_arguments(table, stage)
    properties: dict[str, Any] = {
        key: arguments[key]
        for key in (
            "TableName",
            "BillingMode",
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
        )
        if key in arguments
    }
    if "StreamSpecification" in arguments:  # CloudFormation has no StreamEnabled
        properties["StreamSpecification"] = {
            "StreamViewType": arguments["StreamSpecification"]["StreamViewType"]
        }
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": table.ttl_attribute,
            "Enabled": True,
        }
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["Tags"] = _tags(stage)
    # A tenant's data outlives its stack: deleting or replacing the stack keeps the table.
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def queue_resource(queue: Queue, stage: str) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            **queue.attributes,
            "QueueName": resource_name(stage, queue.name),
            "VisibilityTimeout": queue.visibility_timeout,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_id(queue), "Arn"]},
                "maxReceiveCount": queue.max_receive_count,
            },
            "Tags": _tags(stage),
        },
    }


def dead_letter_resource(queue: Queue, stage: str) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": resource_name(stage, dead_letter_name(queue.name)),
            "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
            "Tags": _tags(stage),
        },
    }


def feedback_resources(stage: str) -> dict[str, Any]:
    """SES configuration set → SNS topic → the `feedback` queue."""
    feedback_queue = queue_id(_queue_named(resource_name(stage, "feedback")))
    return {
        "FeedbackTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": resource_name(stage, "feedback"), "Tags": _tags(stage)},
        },
        "FeedbackTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "FeedbackTopic"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ses.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": {"Ref": "FeedbackTopic"},
                            "Condition": {
                                "StringEquals": {"AWS:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    ],
                },
            },
        },
        "FeedbackSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "FeedbackTopic"},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": [feedback_queue, "Arn"]},
            },
        },
        "FeedbackQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": feedback_queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": [feedback_queue, "Arn"]},
                            "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "FeedbackTopic"}}},
                        }
                    ],
                },
            },
        },
        "EmailConfigurationSet": {
            "Type": "AWS::SES::ConfigurationSet",
            "Properties": {"Name": resource_name(stage, "email")},
        },
        "EmailEventDestination": {
            "Type": "AWS::SES::ConfigurationSetEventDestination",
            "Properties": {
                "ConfigurationSetName": {"Ref": "EmailConfigurationSet"},
                "EventDestination": {
                    "Name": "feedback",
                    "Enabled": True,
                    "MatchingEventTypes": list(SES_EVENT_TYPES),
                    "SnsDestination": {"TopicARN": {"Ref": "FeedbackTopic"}},
                },
            },
        },
    }


def gateway_responses() -> dict[str, Any]:
    """API Gateway's own answers as RFC 9457 problems, like every answer of the app. An
    unknown route, which API Gateway answers as a missing authentication token (403),
    becomes a 404."""

    def response(kind: str, template: str, status: str | None = None) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "RestApiId": {"Ref": "RestAPI"},
            "ResponseType": kind,
            "ResponseParameters": {
                "gatewayresponse.header.Content-Type": "'application/problem+json'"
            },
            "ResponseTemplates": {"application/json": template},
        }
        if status:
            properties["StatusCode"] = status
        return {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": properties}

    return {
        "UnknownRouteResponse": response(
            "MISSING_AUTHENTICATION_TOKEN",
            '{"type": "about:blank", "title": "Not found", "status": 404, '
            '"detail": "no route $context.httpMethod $context.path"}',
            "404",
        ),
        "Default4xxResponse": response("DEFAULT_4XX", PROBLEM),
        "Default5xxResponse": response("DEFAULT_5XX", PROBLEM),
    }


def function_override(function: Function, environment: Mapping[str, str]) -> dict[str, Any]:
    """What the merge adds to one of Chalice's `AWS::Serverless::Function` resources."""
    properties: dict[str, Any] = {
        "FunctionName": function.function_name,
        "Role": {"Fn::GetAtt": [ROLE, "Arn"]},
        "Environment": {"Variables": dict(environment)},
    }
    if function.sqs_event and function.queue:
        properties["Events"] = {
            function.sqs_event: {
                "Properties": {
                    # Fn::Sub over Chalice's Fn::Sub: a reference, so the mapping waits
                    # for its queue.
                    "Queue": {"Fn::Sub": f"${{{queue_id(function.queue)}.Arn}}"},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                }
            }
        }
    if function.stream_event and function.stream_table:
        properties["Events"] = {
            function.stream_event: {
                "Properties": {
                    "Stream": {"Fn::GetAtt": [table_id(function.stream_table), "StreamArn"]},
                    "FilterCriteria": TTL_DELETIONS,
                    # A record that keeps failing must not hold up its shard for a day:
                    # the sweeper fires the same timer anyway.
                    "MaximumRetryAttempts": 10,
                    "BisectBatchOnFunctionError": True,
                }
            }
        }
    return {"Properties": properties}


def _arn(service: str, resource: str) -> dict[str, str]:
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"
    }


def execution_role(stage: str, functions: list[Function], sender: str) -> dict[str, Any]:
    """The functions' role: exactly this stage's resources, named one by one.

    No `scenaria-<stage>-*` patterns: stage `acme` would match stage `acme-eu`'s tables.
    """
    indexed = [table for table in TABLES if table.indexes]
    streamed = [table for table in TABLES if table.stream]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Tables",
            "Effect": "Allow",
            "Action": list(TABLE_ACTIONS),
            "Resource": [{"Fn::GetAtt": [table_id(table), "Arn"]} for table in TABLES],
        },
        {
            "Sid": "Indexes",
            "Effect": "Allow",
            "Action": list(INDEX_ACTIONS),
            "Resource": [{"Fn::Sub": f"${{{table_id(table)}.Arn}}/index/*"} for table in indexed],
        },
        {
            "Sid": "Queues",
            "Effect": "Allow",
            "Action": list(QUEUE_ACTIONS),
            "Resource": [{"Fn::GetAtt": [queue_id(queue), "Arn"]} for queue in QUEUE_DEFINITIONS],
        },
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": list(DEAD_LETTER_ACTIONS),
            "Resource": [
                {"Fn::GetAtt": [dead_letter_id(queue), "Arn"]} for queue in QUEUE_DEFINITIONS
            ],
        },
        {
            "Sid": "Secrets",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": [
                _arn("ssm", f"parameter{parameter}")
                for parameter in (api_key_parameter(stage), vapid_key_parameter(stage))
            ],
        },
        {
            "Sid": "Email",
            "Effect": "Allow",
            "Action": ["ses:SendEmail"],
            "Resource": [
                _arn("ses", f"identity/{identity}") for identity in sender_identities(sender)
            ]
            + [
                {
                    "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
                    ":configuration-set/${EmailConfigurationSet}"
                }
            ],
        },
        {
            "Sid": "Sms",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "NotResource": [{"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}],
        },
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": list(LOG_ACTIONS),
            "Resource": [
                {"Fn::GetAtt": [f"{function.logical_id}LogGroup", "Arn"]} for function in functions
            ],
        },
    ]
    if streamed:
        statements.insert(
            2,
            {
                "Sid": "Streams",
                "Effect": "Allow",
                "Action": list(STREAM_ACTIONS),
                "Resource": [
                    {"Fn::Sub": f"${{{table_id(table)}.Arn}}/stream/*"} for table in streamed
                ],
            },
        )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"Scenaria {stage}: the functions' execution role",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": f"{APP}-{stage}",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
            "Tags": _tags(stage),
        },
    }


def sender_identities(sender: str) -> list[str]:
    """The SES identities that may authorise a sender: its address and its domain."""
    address = parseaddr(sender)[1]
    if "@" not in address:
        raise TemplateError(f"SCENARIA_EMAIL_FROM {sender!r} is not an e-mail address")
    return [address, address.rsplit("@", 1)[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.template", description=__doc__)
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json")
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    options = parser.parse_args(argv)
    try:
        template = merge_template(options.stage)
    except TemplateError as error:
        print(f"infra.template: {error}", file=sys.stderr)
        return 2
    text = json.dumps(template, indent=2, sort_keys=True) + "\n"
    if options.output:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
