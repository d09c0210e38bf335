"""The scenario model of SPEC §1: pydantic models, validation, conditions, templates, schedules."""

from .conditions import compile_condition, compile_path
from .durations import format_datetime, parse_clock_time, parse_datetime, parse_duration
from .facts import Event, Facts, Message, Profile
from .model import WAITING_NODE_TYPES, Condition, Node, Scenario, Trigger, scenario_json_schema
from .schedules import due_runs, in_sample, next_runs
from .templates import render
from .validation import Problem, ScenarioInvalid, check_scenario, validate_scenario

__all__ = [
    "WAITING_NODE_TYPES",
    "Condition",
    "Event",
    "Facts",
    "Message",
    "Node",
    "Problem",
    "Profile",
    "Scenario",
    "ScenarioInvalid",
    "Trigger",
    "check_scenario",
    "compile_condition",
    "compile_path",
    "due_runs",
    "format_datetime",
    "in_sample",
    "next_runs",
    "parse_clock_time",
    "parse_datetime",
    "parse_duration",
    "render",
    "scenario_json_schema",
    "validate_scenario",
]
