"""`GET /openapi.json`: the OpenAPI 3.1 document of the API, generated, never written by hand.

Paths and methods come from the routes the app registered (`app.routes`); what each one
takes and answers comes from `OPERATIONS` below, whose schemas are the pydantic models
that validate the requests (`models.py`, the scenario document's `Scenario`) and the
response models beside them. A route without an entry in `OPERATIONS` fails the unit
test; the local stack's `/local/*` routes are left out (they are never deployed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any

from chalice import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.scenarios.model import Scenario
from chalicelib.templates import CATEGORIES

from . import models as m
from .auth import PUBLIC_PREFIXES, may_be_forbidden  # what the middleware checks
from .errors import PROBLEM_JSON
from .http import MAX_PATH_PARAMETER, PAGE_LIMIT

blueprint = Blueprint(__name__)

OPENAPI_PATH = "/openapi.json"
REF_TEMPLATE = "#/components/schemas/{model}"
LEFT_OUT_PREFIXES = ("/local/",)
JSON = "application/json"
SchemaKey = tuple[type[BaseModel], JsonSchemaMode]

ERROR_TITLES = {
    400: "Bad input: `detail` names the field at fault, `problems` lists every one",
    401: "The X-Api-Key header is missing or wrong (hooks: a bad or stale signature)",
    403: "The key's role may not make this call (a viewer changes nothing, only an admin "
    "manages keys), or the scenario's `group` is not one of the key's",
    404: "No such resource",
    409: "The resource's state does not allow this (e.g. the scenario is not active)",
    415: "The body is not `application/json`, or has no Content-Type",
    422: "The scenario is not valid (`problems` lists everything wrong with it), or the "
    "`Idempotency-Key` was used before with another body",
    503: "Writers kept colliding on one item; nothing was written: retry after `Retry-After`",
}


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: str = "query"
    required: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required,
            "description": self.description,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Operation:
    """What a (path, method) takes and answers, beyond what the route itself tells."""

    summary: str
    tag: str
    response: type[BaseModel] | None  # None: no content
    status: int = 200
    body: tuple[type[BaseModel], ...] = ()  # several: any one of them
    body_required: bool = True
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # besides 401 (unless public) and 400/415 with a body
    description: str | None = None
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    media_type: str | None = None  # a success that is not JSON (the open pixel's GIF)
    long_parameters: tuple[str, ...] = ()  # path parameters longer than ids (link tokens)


PAGE = (
    Param(
        "limit",
        f"page size (1–{PAGE_LIMIT})",
        {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT, "default": 100},
    ),
    Param("next_token", "the `next_token` of the previous page"),
)


def links(*operation_ids: str, **parameters: str) -> dict[str, dict[str, Any]]:
    """OpenAPI links from an answer to the operations that take the same ids next."""
    return {
        operation_id: {"operationId": operation_id, "parameters": parameters}
        for operation_id in operation_ids
    }


NEW_SCENARIO_LINKS = links(
    "read_scenario",
    "replace_scenario",
    "activate_scenario",
    "clone_scenario",
    "scenario_versions",
    "scenario_stats",
    "trash_scenario",
    scenario_id="$response.body#/id",
)
ACTIVE_SCENARIO_LINKS = links(
    "add_profile",
    "send_segment",
    "deactivate_scenario",
    "clear_scenario",
    "scenario_versions",
    scenario_id="$request.path.scenario_id",
)
PROFILE_LINKS = links(
    "read_profile",
    "profile_journeys",
    "erase_profile",
    profile_db="$request.path.profile_db",
    profile_id="$request.path.profile_id",
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    # --- scenarios (SPEC §3.1) ---
    ("/scenarios", "POST"): Operation(
        "Create a scenario (status draft)",
        "Scenarios",
        m.ScenarioOut,
        201,
        body=(Scenario, m.FromTemplate),
        errors=(404,),
        description="A draft may be incomplete (only `name` is required): what keeps it "
        'from being activated is listed in `problems`. `{"template": id}` (with `name` and '
        "`group` if wanted) makes the draft from a built-in template (`GET /templates`). A "
        "key limited to groups saves only scenarios of its groups.",
        links=NEW_SCENARIO_LINKS,
    ),
    ("/scenarios", "GET"): Operation(
        "List scenarios",
        "Scenarios",
        m.ScenarioList,
        params=(
            Param(
                "status",
                "only scenarios with this status",
                {"type": "string", "enum": ["draft", "active", "stopped", "trashed"]},
            ),
            Param("tag", "only scenarios with this tag"),
            Param("group", "only scenarios of this access group"),
            Param("q", "only scenarios whose name or description contains this text"),
            *PAGE,
        ),
        description="A page holds `limit` matching scenarios unless the list ends first, "
        "or the page read as much of the table as one page may (then `partial` is true).",
    ),
    ("/scenarios/simulate", "POST"): Operation(
        "Simulate a profile's journey in virtual time (nothing is sent or stored)",
        "Scenarios",
        m.SimulationResult,
        body=(m.SimulationRequest,),
        errors=(404, 422),
        description="Give exactly one of `scenario` (a document, SPEC §1) or `scenario_id`. "
        "A document this schema admits may still be no valid scenario (a `next` naming no "
        "node, a node nothing reaches...), which no JSON Schema can say: that is a 422 whose "
        "`problems` list everything wrong with it.",
    ),
    ("/scenarios/{scenario_id}", "GET"): Operation(
        "Read a scenario", "Scenarios", m.ScenarioOut, errors=(404,)
    ),
    ("/scenarios/{scenario_id}", "PUT"): Operation(
        "Replace a scenario's document (a new version when active)",
        "Scenarios",
        m.ScenarioOut,
        body=(Scenario,),
        errors=(404, 409, 422),
        description="A draft or stopped scenario saves any document with a `name` (see "
        "`problems`); an active one only a valid document, which becomes a new version "
        "that profiles in flight follow.",
    ),
    ("/scenarios/{scenario_id}", "DELETE"): Operation(
        "Trash a scenario (not while active)",
        "Scenarios",
        m.ScenarioOut,
        errors=(404, 409),
        links=links("restore_scenario", scenario_id="$request.path.scenario_id"),
    ),
    ("/scenarios/{scenario_id}/activate", "POST"): Operation(
        "Validate and activate a scenario",
        "Scenarios",
        m.Activation,
        errors=(404, 409, 422),
        links=ACTIVE_SCENARIO_LINKS,
        description="Starts capturing. `webhook_secret` signs calls to its webhook triggers.",
    ),
    ("/scenarios/{scenario_id}/deactivate", "POST"): Operation(
        "Deactivate a scenario",
        "Scenarios",
        m.ScenarioOut,
        body=(m.Deactivation,),
        body_required=False,
        errors=(404, 409),
        description="`keep_profiles` defaults to the scenario's `keep_profiles_on_stop`.",
    ),
    ("/scenarios/{scenario_id}/restore", "POST"): Operation(
        "Restore a trashed scenario", "Scenarios", m.ScenarioOut, errors=(404, 409)
    ),
    ("/scenarios/{scenario_id}/clone", "POST"): Operation(
        "Copy a scenario as a new draft",
        "Scenarios",
        m.ScenarioOut,
        201,
        errors=(404,),
        links=NEW_SCENARIO_LINKS,
    ),
    ("/scenarios/{scenario_id}/versions", "GET"): Operation(
        "List a scenario's versions", "Scenarios", m.VersionList, params=PAGE, errors=(404,)
    ),
    ("/scenarios/{scenario_id}/triggers/{trigger_id}/next-runs", "GET"): Operation(
        "Next run times of a schedule trigger",
        "Scenarios",
        m.NextRuns,
        params=(
            Param(
                "count",
                "how many runs",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 12},
            ),
        ),
        errors=(404, 422),
    ),
    # --- profiles in scenarios (SPEC §3.2) ---
    ("/scenarios/{scenario_id}/clear", "POST"): Operation(
        "Remove every profile now in the scenario",
        "Profiles in scenarios",
        m.Removed,
        errors=(404,),
    ),
    ("/scenarios/{scenario_id}/profiles", "POST"): Operation(
        "Put a profile in (the default capture)",
        "Profiles in scenarios",
        m.Captured,
        201,
        body=(m.Capture,),
        errors=(404, 409),
        description="The profile enters at `entry`; `data` is the entry event's data. 404 "
        "when the scenario or the profile is unknown; 409 "
        "when the scenario is not active or the profile was not captured (see `reason`).",
    ),
    ("/scenarios/{scenario_id}/send-segment", "POST"): Operation(
        "Put every member of a segment in now",
        "Profiles in scenarios",
        m.SegmentRun,
        202,
        body=(m.SendSegment,),
        params=(
            Param(
                "Idempotency-Key",
                "a retry with the key gets the first call's run and captures nobody again",
                where="header",
            ),
        ),
        errors=(404, 409, 422),
        description="Every call is a run of its own, unless it repeats an `Idempotency-Key`.",
    ),
    ("/scenarios/{scenario_id}/profiles/{profile_id}", "DELETE"): Operation(
        "Remove a profile's journeys in the scenario",
        "Profiles in scenarios",
        m.Removed,
        errors=(404,),
    ),
    ("/scenarios/{scenario_id}/nodes/{node_id}/profiles", "GET"): Operation(
        "Profiles now at a node",
        "Profiles in scenarios",
        m.ProfilesAtNode,
        params=PAGE,
        errors=(404,),
    ),
    ("/scenarios/{scenario_id}/nodes/{node_id}/profiles", "DELETE"): Operation(
        "Remove every profile now at a node",
        "Profiles in scenarios",
        m.Removed,
        202,
        errors=(404,),
    ),
    # --- analytics (SPEC §3.3) ---
    ("/scenarios/{scenario_id}/stats", "GET"): Operation(
        "A scenario's statistics",
        "Analytics",
        m.ScenarioStats,
        params=(
            Param("from", "first day counted", {"type": "string", "format": "date"}),
            Param("to", "last day counted", {"type": "string", "format": "date"}),
            Param("version", "only this version (default: all, summed)", {"type": "integer"}),
            Param(
                "by",
                "`day`: add `days`, the scenario-wide counters of each day (at most 366)",
                {"type": "string", "enum": ["day"]},
            ),
        ),
        errors=(404,),
    ),
    # --- events, profiles, segments, promo pools, hooks (SPEC §3.4) ---
    ("/events", "POST"): Operation(
        "Send one event or a batch of up to 500",
        "Events",
        m.EventAcceptance,
        202,
        body=(m.EventIn, m.EventBatch),
        description="A single invalid event is a 400. In a batch each event is checked on "
        "its own: the invalid ones are listed in `rejected`, the others queued. An `id` "
        "seen before is counted in `duplicates` and not processed again.",
    ),
    ("/profiles/{profile_db}/{profile_id}", "PUT"): Operation(
        "Create or update a profile",
        "Profiles",
        m.ProfileOut,
        body=(m.ProfileUpsert,),
        description="The given fields are merged in; `null` clears one.",
        links=PROFILE_LINKS,
        errors=(503,),
    ),
    ("/profiles/{profile_db}/{profile_id}", "GET"): Operation(
        "Read a profile", "Profiles", m.ProfileOut, errors=(404,)
    ),
    ("/profiles/{profile_db}/{profile_id}", "DELETE"): Operation(
        "Erase a profile (its journeys end, its history is gone)",
        "Profiles",
        None,
        204,
        errors=(404,),
    ),
    ("/profiles/{profile_db}/import", "POST"): Operation(
        "Import up to 1,000 profiles",
        "Profiles",
        m.ImportResult,
        body=(m.ProfileImport,),
        description="A `profile_id` given more than once is imported once, its entries' "
        "`fields` merged in their order (a later value wins, as successive upserts would "
        "leave it); `imported` counts profiles, `created` those that were new.",
    ),
    ("/profiles/{profile_db}/merge", "POST"): Operation(
        "Merge profiles into one (emits profile.merged)",
        "Profiles",
        m.Merged,
        body=(m.ProfileMerge,),
        description="Fields (`into` wins; consents channel by channel), histories, messages "
        "and every other row of the `from` profiles move to `into`; in each scenario the "
        "instance furthest along survives and the others exit with reason `merged`; a "
        "merged id then resolves to `into`. The same merge again finishes it if it was cut "
        "short and answers the same. 404: no such `into` or `from` profile; 409: one was "
        "merged into another profile.",
        errors=(404, 409),
    ),
    ("/profiles/{profile_db}/{profile_id}/journeys", "GET"): Operation(
        "A profile's journeys, newest first", "Profiles", m.Journeys, params=PAGE
    ),
    ("/segments/{segment_id}", "PUT"): Operation(
        "Define a segment",
        "Segments",
        m.SegmentOut,
        body=(m.SegmentIn,),
        description="Every profile's membership of it is evaluated again (a fan-out): "
        "`segment.entered` / `segment.exited` announce the changes.",
        links=links("read_segment", "count_segment", segment_id="$response.body#/id"),
    ),
    ("/segments/{segment_id}", "GET"): Operation(
        "Read a segment", "Segments", m.SegmentOut, errors=(404,)
    ),
    ("/segments/{segment_id}", "DELETE"): Operation(
        "Delete a segment (its members exit it: segment.exited)",
        "Segments",
        None,
        204,
        errors=(404,),
    ),
    ("/segments/{segment_id}/count", "GET"): Operation(
        "Count a segment's members", "Segments", m.SegmentCount, errors=(404,)
    ),
    ("/promo-pools/{pool}", "PUT"): Operation(
        "Add promo codes to a pool",
        "Promo pools",
        m.PromoPool,
        body=(m.PromoCodes,),
        links=links("read_promo_pool", pool="$response.body#/pool"),
    ),
    ("/promo-pools/{pool}/redeem", "POST"): Operation(
        "Redeem a code of the pool, once (emits promo_code.redeemed)",
        "Promo pools",
        m.Redeemed,
        body=(m.Redemption,),
        errors=(404, 409),
    ),
    ("/promo-pools/{pool}", "GET"): Operation(
        "How many codes a pool has left", "Promo pools", m.PromoPool, errors=(404,)
    ),
    ("/hooks/{scenario_id}/{trigger_id}", "POST"): Operation(
        "Call a webhook trigger (signed, no API key)",
        "Hooks",
        m.HookResult,
        202,
        body=(m.HookCall,),
        params=(
            Param(
                "X-Timestamp",
                "Unix seconds, within 5 minutes of the stack's clock",
                where="header",
                required=True,
            ),
            Param(
                "X-Signature",
                '`sha256=` and the hex HMAC-SHA256 of `"<X-Timestamp>.<body>"` keyed with '
                "the scenario's `webhook_secret`",
                where="header",
                required=True,
            ),
            Param(
                "Idempotency-Key",
                "a call with a key seen before is answered as the first was",
                where="header",
            ),
        ),
        errors=(404, 409, 422),
        description="A signed call is accepted once: the same bytes again are a 409.",
    ),
    ("/feedback", "POST"): Operation(
        "Report a message's delivery status",
        "Feedback",
        m.FeedbackResult,
        body=(m.Feedback, m.SesEventNotification, m.SnsNotification),
        errors=(404,),
        description='`{"message_id", "status", "at"}`, or an SES event notification '
        "as SNS delivers it (`Type` `Notification`) or bare (`eventType`): our message id is "
        "its `mail.tags.message_id`. Each status counts once per message; a repeated one "
        "changes nothing. SNS subscription confirmations are refused (400): subscribe the "
        "stack's feedback queue instead.",
    ),
    # --- tracking links (SPEC §3: no API key) ---
    ("/t/o/{token}", "GET"): Operation(
        "An e-mail's open pixel (a 1×1 GIF): the message is opened",
        "Tracking",
        None,
        errors=(404,),
        media_type="image/gif",
        long_parameters=("token",),
    ),
    ("/t/c/{token}", "GET"): Operation(
        "A tracked link: redirects to its URL, the message is clicked (and opened)",
        "Tracking",
        None,
        302,
        errors=(404,),
        long_parameters=("token",),
        description="The URL is in the signed token: a token this stack did not sign is a 404.",
    ),
    # --- operating the stack ---
    ("/admin/dead-letters", "GET"): Operation(
        "Every queue's dead-letter queue and its depth", "Admin", m.DeadLetterQueues
    ),
    ("/admin/dead-letters/{queue}/redrive", "POST"): Operation(
        "Move a dead-letter queue's messages back to their queue",
        "Admin",
        m.Redrive,
        202,
        errors=(404, 409),
        description="`queue` is one of the stack's queues (`events`, `steps`, `segments`, "
        "`email`, `sms`, `push`, `webhook`, `feedback`). SQS moves the messages (a message "
        "move task); `messages` is the depth when it started. The consumers are idempotent: "
        "work a message did before it was dead-lettered is not done again. 409 while a "
        "move of that queue is still running.",
    ),
    # --- templates and API keys (SPEC §9) ---
    ("/templates", "GET"): Operation(
        "List the built-in scenario templates",
        "Templates",
        m.TemplateList,
        params=(
            Param(
                "category",
                "only templates of this category",
                {"type": "string", "enum": list(CATEGORIES)},
            ),
        ),
    ),
    ("/templates/{template_id}", "GET"): Operation(
        "Read a scenario template", "Templates", m.TemplateOut, errors=(404,)
    ),
    ("/api-keys", "POST"): Operation(
        "Make an API key (admin only; the key is shown once)",
        "API keys",
        m.NewApiKey,
        201,
        body=(m.ApiKeyIn,),
        description="`viewer` reads (and simulates), `editor` also changes, `admin` also "
        "manages keys. With `groups`, the key sees and changes only scenarios whose `group` "
        "is one of them (others are 404); an admin key has no groups.",
    ),
    ("/api-keys", "GET"): Operation(
        "List the API keys, without their secrets (admin only)",
        "API keys",
        m.ApiKeyList,
    ),
    ("/api-keys/{key_id}", "DELETE"): Operation(
        "Revoke an API key at once (admin only)", "API keys", None, 204, errors=(404,)
    ),
    # --- the console (SPEC §9) ---
    ("/scenarios/{scenario_id}/diagram.svg", "GET"): Operation(
        "The scenario's graph with its counters, as SVG",
        "Console",
        None,
        params=(
            Param("from", "first day counted", {"type": "string", "format": "date"}),
            Param("to", "last day counted", {"type": "string", "format": "date"}),
            Param("version", "this version's graph and counters", {"type": "integer"}),
        ),
        errors=(404,),
        media_type="image/svg+xml",
    ),
    ("/console", "GET"): Operation(
        "The web console (no API key: it asks for one)", "Console", None, media_type="text/html"
    ),
    ("/console/{name}", "GET"): Operation(
        "A file of the web console", "Console", None, errors=(404,), media_type="text/*"
    ),
    # --- the stack's settings (SPEC §8) ---
    ("/settings/control", "GET"): Operation(
        "The stack's global control group", "Settings", m.ControlOut
    ),
    ("/settings/control", "PUT"): Operation(
        "Set the stack's global control group",
        "Settings",
        m.ControlOut,
        body=(m.ControlIn,),
        description="`percent` from 0 (none) up to but not including 100: profiles whose "
        "stable point falls under it receive nothing from any non-`transactional` scenario "
        "and are measured apart (`control` in a scenario's stats).",
    ),
    ("/settings/signals", "GET"): Operation(
        "When the derived commerce and web signals fire", "Settings", m.SignalsOut
    ),
    ("/settings/signals", "PUT"): Operation(
        "Set when the derived commerce and web signals fire",
        "Settings",
        m.SignalsOut,
        body=(m.SignalsIn,),
        description="`cart_abandoned_after`, `browse_abandoned_after` and `session_timeout` "
        "are positive ISO durations (defaults `PT1H`, `PT1H`, `PT30M`); `price_check` is "
        "`on_change` (default) or a schedule with one of `cron`, `daily`, `weekly`, "
        "`monthly` (and `timezone`). The keys given are set, `null` puts one back to its "
        "default, the others keep their values.",
    ),
    # --- commerce (SPEC §6) ---
    ("/products/{product_id}", "PUT"): Operation(
        "Put a product in the catalogue, or change it",
        "Commerce",
        m.ProductOut,
        body=(m.ProductIn,),
        description="The keys given are merged into the product as stored: `fields` and "
        "`regions` key by key, `null` clears a value, a field, a region or a region's value.",
    ),
    ("/products/{product_id}", "GET"): Operation(
        "Read a product as stored", "Commerce", m.ProductOut, errors=(404,)
    ),
    ("/products/import", "POST"): Operation(
        "Put up to 1,000 products (the feed)",
        "Commerce",
        m.ProductImportResult,
        body=(m.ProductImport,),
        description="Each product is merged in as `PUT /products/{product_id}` does; one that "
        "is not valid is listed in `rejected` (its index and what is wrong) and the others "
        "are stored.",
    ),
    ("/profiles/{profile_db}/{profile_id}/lists/{list_name}", "PUT"): Operation(
        "Set one of a profile's product lists as a whole",
        "Commerce",
        m.ListOut,
        body=(m.ListIn,),
        description="Lines not given are taken off; a product already on the list keeps the "
        "price seen and `added_at` of when it was added. Without `price`, a new line keeps "
        "the product's effective price for the profile's `zone`.",
    ),
    ("/profiles/{profile_db}/{profile_id}/lists/{list_name}", "GET"): Operation(
        "Read one of a profile's product lists", "Commerce", m.ListOut
    ),
    (OPENAPI_PATH, "GET"): Operation("This document", "Meta", None),
}

TAGS = (
    ("Scenarios", "Scenario documents and their lifecycle (SPEC §1, §3.1)"),
    ("Profiles in scenarios", "Putting profiles in and taking them out (SPEC §3.2)"),
    ("Analytics", "Statistics (SPEC §3.3)"),
    ("Events", "Events (SPEC §3.4, §4)"),
    ("Profiles", "Profiles and their journeys (SPEC §2, §3.4)"),
    ("Segments", "Named conditions over a profile database"),
    ("Promo pools", "Promo codes that `promo_code` nodes hand out"),
    ("Hooks", "Webhook triggers, authenticated by their signature"),
    ("Feedback", "Delivery feedback of messages"),
    ("Tracking", "Open pixels and tracked links of e-mails, signed, without an API key"),
    ("Admin", "Operating the stack: dead-letter queues and their redrive"),
    ("Templates", "Built-in scenario templates to start from (SPEC §9)"),
    ("API keys", "Keys with a role and access groups (SPEC §9)"),
    ("Console", "The web console and the scenario diagram (SPEC §9)"),
    ("Settings", "The stack's settings: its global control group (SPEC §8) and signals (§6.3)"),
    ("Commerce", "The catalogue and the profiles' product lists (SPEC §6)"),
    ("Meta", "The API's description"),
)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def described_routes(routes: dict[str, dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(path, method, route entry) of every route the document describes."""
    return [
        (path, method, entry)
        for path, methods in routes.items()
        if not path.startswith(LEFT_OUT_PREFIXES)
        for method, entry in methods.items()
    ]


def _version() -> str:
    try:
        return metadata.version("scenaria")
    except metadata.PackageNotFoundError:  # on Lambda chalicelib is files, not a package
        return "0.1.0"


def openapi_document(routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The document for these routes (`app.routes`); raises KeyError for an undescribed one."""
    return _document(tuple((p, m, e.view_name) for p, m, e in described_routes(routes)))


@cache
def _document(routes: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    missing = [(path, method) for path, method, _ in routes if (path, method) not in OPERATIONS]
    if missing:
        raise KeyError(f"routes without an entry in OPERATIONS: {missing}")
    refs, components = _schemas([OPERATIONS[path, method] for path, method, _ in routes])
    paths: dict[str, dict[str, Any]] = {}
    for path, method, view_name in sorted(routes):
        operation = OPERATIONS[path, method]
        paths.setdefault(path, {})[method.lower()] = _operation(
            path, method, operation, view_name, refs
        )
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Scenaria",
            "version": _version(),
            "summary": "Marketing-automation scenarios on AWS serverless",
            "description": "JSON in and out. Every call but `/hooks/*`, the tracking links "
            "`/t/*`, the console's page and files `/console*` and this document needs the `X-Api-Key` header. Errors are `application/problem+json` "
            "(RFC 9457) whose `detail` names the field at fault; bad input never "
            "changes state. A guide with examples: docs/api.md.",
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
            "responses": {
                str(status): {
                    "description": text,
                    "content": {PROBLEM_JSON: {"schema": refs[m.ProblemDocument, "serialization"]}},
                }
                for status, text in ERROR_TITLES.items()
            },
        },
    }


def _schemas(operations: list[Operation]) -> tuple[dict[SchemaKey, dict[str, Any]], dict[str, Any]]:
    """Every model's schema once: `$ref`s by (model, mode), and the components."""
    wanted: set[SchemaKey] = {(m.ProblemDocument, "serialization")}
    for operation in operations:
        wanted.update((model, "validation") for model in operation.body)
        if operation.response is not None:
            wanted.add((operation.response, "serialization"))
    ordered = sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, top = models_json_schema(ordered, ref_template=REF_TEMPLATE)
    return {key: refs[key] for key in ordered}, {**top.get("$defs", {}), **m.STORABLE_SCHEMAS}


def _operation(
    path: str,
    method: str,
    operation: Operation,
    view_name: str,
    refs: dict[SchemaKey, dict[str, Any]],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": view_name,
        "summary": operation.summary,
        "tags": [operation.tag],
    }
    if operation.description:
        document["description"] = operation.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1}
            if name in operation.long_parameters
            else {"type": "string", "minLength": 1, "maxLength": MAX_PATH_PARAMETER},
        }
        for name in re.findall(r"{(\w+)}", path)
    ] + [param.document() for param in operation.params]
    if parameters:
        document["parameters"] = parameters
    if operation.body:
        schemas = [refs[model, "validation"] for model in operation.body]
        document["requestBody"] = {
            "required": operation.body_required,
            "content": {JSON: {"schema": schemas[0] if len(schemas) == 1 else {"anyOf": schemas}}},
        }
    success: dict[str, Any] = {"description": operation.summary}
    if operation.response is not None:
        success["content"] = {JSON: {"schema": refs[operation.response, "serialization"]}}
    elif operation.media_type:
        success["content"] = {
            operation.media_type: {"schema": {"contentMediaType": operation.media_type}}
        }
    elif path == OPENAPI_PATH:
        success["content"] = {JSON: {"schema": {"type": "object"}}}
    if operation.links:
        success["links"] = operation.links
    responses: dict[str, Any] = {str(operation.status): success}
    errors = set(operation.errors)
    if operation.body or parameters:  # path parameters too: 1 to 200 characters
        errors.add(400)
    if operation.body:
        errors.add(415)
    if is_public(path):
        document["security"] = []
        if path.startswith("/hooks/"):
            errors.add(401)
    else:
        errors.add(401)
        if may_be_forbidden(method, path):
            errors.add(403)
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    document["responses"] = responses
    return document


@blueprint.route(OPENAPI_PATH, methods=["GET"])
def openapi_json() -> dict[str, Any]:
    """The document for the routes the running app has (public: no API key)."""
    return openapi_document(blueprint.current_app.routes)
