"""Scenario files: a morning described in real-world terms, validated on load (schema in scenarios/README.md)."""

from schoolsurge.scenario.clock import clock_to_seconds, seconds_to_clock
from schoolsurge.scenario.load import ScenarioError, load_scenario, parse_scenario
from schoolsurge.scenario.schema import (
    ACTIONS,
    BotFlood,
    CapacityLoss,
    EmbeddedPlatform,
    Group,
    Incident,
    LoginTime,
    Persona,
    RetryPolicy,
    RunDefaults,
    Scenario,
    SessionLength,
    Slo,
    ThinkTime,
    Window,
)

__all__ = [
    "ACTIONS",
    "BotFlood",
    "CapacityLoss",
    "EmbeddedPlatform",
    "Group",
    "Incident",
    "LoginTime",
    "Persona",
    "RetryPolicy",
    "RunDefaults",
    "Scenario",
    "ScenarioError",
    "SessionLength",
    "Slo",
    "ThinkTime",
    "Window",
    "clock_to_seconds",
    "load_scenario",
    "parse_scenario",
    "seconds_to_clock",
]
