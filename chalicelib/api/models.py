"""Request bodies, validated with pydantic (the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chalicelib.engine.simulate import Simulation
from chalicelib.scenarios.model import Condition, Duration


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioDraft(BaseModel):
    """A scenario document (SPEC §1). A draft may be incomplete; `name` is required."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200)


class Deactivation(Body):
    keep_profiles: bool | None = None


class Capture(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class EventIn(Body):
    id: str | None = Field(None, min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    profile_db: str = Field("default", min_length=1, max_length=100)
    profile_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ProfileUpsert(Body):
    fields: dict[str, Any]
    source: Literal["api", "manual", "form", "popup", "import"] = "api"


class SegmentIn(Body):
    profile_db: str = Field("default", min_length=1)
    where: Condition


class PromoCodes(Body):
    codes: list[str] = Field(min_length=1, max_length=10_000)


class SendSegment(Body):
    segment: str | Condition


class ClockChange(Body):
    advance: Duration | None = None
    set: AwareDatetime | None = None


class SimulationRequest(Simulation):
    """`POST /scenarios/simulate`: a scenario document or a stored scenario's id, and a timeline."""

    scenario: dict[str, Any] | None = None
    scenario_id: str | None = None


class ImportedProfile(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    fields: dict[str, Any]


class ProfileImport(Body):
    profiles: list[ImportedProfile] = Field(min_length=1, max_length=1000)


class HookCall(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    profile: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


class Feedback(Body):
    message_id: str = Field(min_length=1)
    status: Literal["delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"]
    at: AwareDatetime | None = None
