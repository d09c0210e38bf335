"""The deployment template (`infra/template.py`): one tenant's stack shares nothing with
another's, every queue consumer reports partial batch failures, the TTL stream reaches
its handler, and the functions' role reaches only its own stage's resources.

The merge template is checked on its own and merged into the template Chalice's own
generator makes for the app (without building the deployment zip, so no network):
`make package-lint` runs the real `chalice package` and cfn-lint.
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import pytest

from chalicelib.config import resource_name
from infra.resources import QUEUE_DEFINITIONS, TABLES, dead_letter_name
from infra.template import (
    ROLE,
    TemplateError,
    api_key_parameter,
    chalice_config,
    dead_letter_id,
    load_config,
    merge_template,
    queue_id,
    table_id,
)

STAGES = ("tenant-example", "tenant-other")


def project_config() -> dict[str, Any]:
    """.chalice/config.json with a second tenant added as docs/deploy.md tells."""
    config = load_config()
    other = copy.deepcopy(config["stages"]["tenant-example"])
    other["environment_variables"] = {
        "SCENARIA_STAGE": "tenant-other",
        "SCENARIA_API_KEY_PARAMETER": "/scenaria/tenant-other/api-key",
        "SCENARIA_VAPID_KEY_PARAMETER": "/scenaria/tenant-other/vapid-private-key",
        "SCENARIA_EMAIL_FROM": "news@other.example.org",
        "SCENARIA_PUBLIC_URL": "https://journeys.other.example.org",
    }
    config["stages"]["tenant-other"] = other
    return config


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    config = project_config()
    return {stage: merge_template(stage, config) for stage in STAGES}


@pytest.fixture(scope="module")
def packaged() -> dict[str, dict[str, Any]]:
    """Chalice's SAM template for each stage with the merge template folded in."""
    config = project_config()
    return {stage: _chalice_template(stage, config) for stage in STAGES}


def _chalice_template(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    import botocore.session
    from chalice.awsclient import TypedAWSClient
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.deploy.deployer import BuildStage, InjectDefaults, SwaggerBuilder
    from chalice.deploy.swagger import CFNSwaggerGenerator
    from chalice.package import (
        PackageOptions,
        ResourceBuilder,
        SAMTemplateGenerator,
        TemplateDeepMerger,
    )

    chalice = chalice_config(stage, config)
    builder = ResourceBuilder(
        ApplicationGraphBuilder(),
        DependencyBuilder(),
        BuildStage([InjectDefaults(), SwaggerBuilder(CFNSwaggerGenerator())]),
    )
    session = botocore.session.get_session()
    session.set_config_variable("region", "us-east-1")
    generator = SAMTemplateGenerator(chalice, PackageOptions(TypedAWSClient(session)))
    generated = generator.generate(builder.construct_resources(chalice, stage))
    merged: dict[str, Any] = TemplateDeepMerger().merge(merge_template(stage, config), generated)
    return merged


def physical_names(template: dict[str, Any]) -> set[str]:
    names = set()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("TableName", "QueueName", "FunctionName", "LogGroupName", "LayerName"):
            if isinstance(properties.get(key), str):
                names.add(properties[key])
        for policy in properties.get("Policies", []):
            names.add(policy["PolicyName"])
    names.add(template["Outputs"]["ApiKeyParameter"]["Value"])
    return names


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def test_every_table_and_queue_is_in_the_template(templates: dict[str, Any]) -> None:
    for stage, template in templates.items():
        resources = template["Resources"]
        for table in TABLES:
            properties = resources[table_id(table)]["Properties"]
            assert properties["TableName"] == resource_name(stage, table.name)
            assert properties["BillingMode"] == "PAY_PER_REQUEST"
            assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
            indexes = {index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])}
            assert indexes == {index.name for index in table.indexes}
            if table.ttl_attribute:
                assert properties["TimeToLiveSpecification"] == {
                    "AttributeName": table.ttl_attribute,
                    "Enabled": True,
                }
            else:
                assert "TimeToLiveSpecification" not in properties
            if table.stream:
                assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert resources["TimersTable"]["Properties"]["StreamSpecification"]
        for queue in QUEUE_DEFINITIONS:
            properties = resources[queue_id(queue)]["Properties"]
            dead = resources[dead_letter_id(queue)]["Properties"]
            assert properties["QueueName"] == resource_name(stage, queue.name)
            assert dead["QueueName"] == resource_name(stage, dead_letter_name(queue.name))
            assert properties["RedrivePolicy"] == {
                "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_id(queue), "Arn"]},
                "maxReceiveCount": queue.max_receive_count,
            }
            assert properties["VisibilityTimeout"] >= 6 * 30  # the functions' timeout


def test_two_tenants_share_no_physical_name(packaged: dict[str, Any]) -> None:
    names = {stage: physical_names(template) for stage, template in packaged.items()}
    for stage, found in names.items():
        assert len(found) > 2 * len(TABLES) + 2 * len(QUEUE_DEFINITIONS)
        for name in found:
            assert f"scenaria-{stage}" in name or f"/scenaria/{stage}/" in name, name
    first, second = names.values()
    assert not first & second


def test_every_sqs_event_source_reports_batch_item_failures(packaged: dict[str, Any]) -> None:
    queue_arns = [{"Fn::Sub": f"${{{queue_id(queue)}.Arn}}"} for queue in QUEUE_DEFINITIONS]
    for template in packaged.values():
        sources = [
            event["Properties"]
            for function in of_type(template, "AWS::Serverless::Function").values()
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "SQS"
        ]
        assert len(sources) == len(QUEUE_DEFINITIONS)
        for source in sources:
            assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # each of the stack's own queues, one consumer each, and no other queue
        assert sorted(json.dumps(source["Queue"]) for source in sources) == sorted(
            json.dumps(arn) for arn in queue_arns
        )


def test_the_stream_mapping_reads_the_timers_stream(packaged: dict[str, Any]) -> None:
    for template in packaged.values():
        streams = [
            event["Properties"]
            for function in of_type(template, "AWS::Serverless::Function").values()
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "DynamoDB"
        ]
        assert len(streams) == 1
        assert streams[0]["Stream"] == {"Fn::GetAtt": ["TimersTable", "StreamArn"]}
        pattern = json.loads(streams[0]["FilterCriteria"]["Filters"][0]["Pattern"])
        assert pattern["userIdentity"]["principalId"] == ["dynamodb.amazonaws.com"]
        assert "000000000000" not in json.dumps(template, default=str)  # no placeholder left


def test_every_function_runs_as_the_stage_role_with_the_stage_settings(
    packaged: dict[str, Any],
) -> None:
    for stage, template in packaged.items():
        assert all("Type" in resource for resource in template["Resources"].values())
        functions = of_type(template, "AWS::Serverless::Function")
        assert "APIHandler" in functions
        assert "TimerExpired" in functions
        for function in functions.values():
            properties = function["Properties"]
            assert properties["Role"] == {"Fn::GetAtt": [ROLE, "Arn"]}
            variables = properties["Environment"]["Variables"]
            assert variables["SCENARIA_STAGE"] == stage
            assert variables["SCENARIA_API_KEY_PARAMETER"] == api_key_parameter(stage)
        assert not of_type(template, "AWS::IAM::Role").keys() - {ROLE}


def _referenced(resource: Any) -> str | None:
    """The logical id an ARN in the policy is built from, if any."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        arn = resource["Fn::Sub"]
        found = re.fullmatch(r"\$\{(\w+)\.Arn\}/(index|stream)/\*", arn) or re.search(
            r":configuration-set/\$\{(\w+)\}$", arn
        )
        return found.group(1) if found else None
    return None


def test_the_role_reaches_only_the_stage_resources(templates: dict[str, Any]) -> None:
    senders = {"tenant-example": "shop.example.com", "tenant-other": "other.example.org"}
    for stage, template in templates.items():
        resources = template["Resources"]
        statements = resources[ROLE]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        granted: dict[str, set[str]] = {}
        for statement in statements:
            assert statement["Effect"] == "Allow"
            if statement["Sid"] == "Sms":  # phone numbers, and nothing that has an ARN
                assert statement["Action"] == ["sns:Publish"]
                assert statement["NotResource"] == [{"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}]
                assert "Resource" not in statement
                continue
            for resource in statement["Resource"]:
                assert resource != "*"
                target = _referenced(resource)
                if target is not None:
                    properties = resources[target]["Properties"]
                    name = next(
                        properties[key]
                        for key in ("TableName", "QueueName", "LogGroupName", "Name")
                        if key in properties
                    )
                    assert name.startswith(
                        (f"scenaria-{stage}-", f"/aws/lambda/scenaria-{stage}")
                    ), name
                else:  # parameters and the sender: ARNs in this account and region
                    arn = resource["Fn::Sub"]
                    assert arn.startswith("arn:${AWS::Partition}:"), arn
                    assert ":${AWS::Region}:${AWS::AccountId}:" in arn, arn
                    assert f"parameter/scenaria/{stage}/" in arn or senders[stage] in arn, arn
                for action in statement["Action"]:
                    granted.setdefault(action.split(":")[0], set()).add(str(target or resource))
        assert set(granted) == {"dynamodb", "sqs", "ssm", "logs", "ses"}
        # The queues, and their dead-letter queues only to read and redrive them; every
        # table and its indexes.
        queues = {queue_id(queue) for queue in QUEUE_DEFINITIONS}
        dead = {dead_letter_id(queue) for queue in QUEUE_DEFINITIONS}
        assert queues | dead == granted["sqs"]
        (redrive,) = [s for s in statements if s["Sid"] == "DeadLetters"]
        assert {_referenced(r) for r in redrive["Resource"]} == dead
        assert "sqs:SendMessage" not in redrive["Action"]
        assert {table_id(table) for table in TABLES} <= granted["dynamodb"]
        assert not any(action.endswith("*") for s in statements for action in s["Action"])


def test_ses_events_reach_the_feedback_queue(templates: dict[str, Any]) -> None:
    for stage, template in templates.items():
        resources = template["Resources"]
        destination = resources["EmailEventDestination"]["Properties"]["EventDestination"]
        assert destination["SnsDestination"] == {"TopicARN": {"Ref": "FeedbackTopic"}}
        assert {"send", "delivery", "bounce", "complaint", "open", "click"} <= set(
            destination["MatchingEventTypes"]
        )
        subscription = resources["FeedbackSubscription"]["Properties"]
        assert subscription["Endpoint"] == {"Fn::GetAtt": ["FeedbackQueue", "Arn"]}
        assert resources["EmailConfigurationSet"]["Properties"]["Name"] == f"scenaria-{stage}-email"


def test_unknown_routes_are_answered_as_problems(templates: dict[str, Any]) -> None:
    resources = templates["tenant-example"]["Resources"]
    unknown = resources["UnknownRouteResponse"]["Properties"]
    assert unknown["StatusCode"] == "404"
    for name in ("UnknownRouteResponse", "Default4xxResponse", "Default5xxResponse"):
        properties = resources[name]["Properties"]
        header = properties["ResponseParameters"]["gatewayresponse.header.Content-Type"]
        assert header == "'application/problem+json'"


def test_stage_names_and_config_are_checked() -> None:
    config = project_config()
    with pytest.raises(TemplateError, match=r"not in \.chalice/config\.json"):
        merge_template("tenant-missing", config)
    with pytest.raises(TemplateError, match="stage"):
        merge_template("Tenant_B", config)
    with pytest.raises(TemplateError, match="local"):
        merge_template("local", config)
    config["stages"]["tenant-other"]["environment_variables"]["SCENARIA_STAGE"] = "tenant-example"
    with pytest.raises(TemplateError, match="SCENARIA_STAGE"):
        merge_template("tenant-other", config)


def test_building_the_template_leaves_the_environment_alone() -> None:
    before = dict(os.environ)
    merge_template("tenant-example", project_config())
    assert dict(os.environ) == before
