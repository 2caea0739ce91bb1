"""The field policy: check-in intervals by kind and priority, the prompt, the steps of a missed check-in, the
pairs-only rules and the duress words, and how the settings spell them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.dispatcher.domain.field_policy import (
    CHECK_IN_STEPS,
    CheckInPolicy,
    PairsOnly,
    parse_duress_words,
    parse_minutes_by,
    parse_pairs_only,
    step_offsets,
)
from services.dispatcher.settings import DispatcherSettings

T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_the_interval_is_by_kind_and_priority_then_kind_then_priority_then_the_default() -> None:
    policy = CheckInPolicy(minutes=15, minutes_by=parse_minutes_by("self_harm_risk:P1=5, self_harm_risk=10, P3=30"))
    assert policy.interval("self_harm_risk", "P1") == 5
    assert policy.interval("self_harm_risk", "P3") == 10
    assert policy.interval("overdose", "P3") == 30
    assert policy.interval("overdose", "P1") == 15


def test_the_prompt_comes_before_the_due_time_unless_the_interval_is_shorter_than_the_lead() -> None:
    policy = CheckInPolicy(prompt_before=timedelta(minutes=2))
    assert policy.prompt_at(T + timedelta(minutes=15), T) == T + timedelta(minutes=13)
    assert policy.prompt_at(T + timedelta(minutes=2), T) is None


def test_the_steps_of_a_missed_check_in_come_in_order_at_their_offsets_and_end() -> None:
    policy = CheckInPolicy(step_after=step_offsets(0, 2, 5, 10))
    due = T + timedelta(minutes=15)
    times = [policy.step_at(due, i) for i in range(len(CHECK_IN_STEPS) + 1)]
    assert CHECK_IN_STEPS == ("reminder", "call", "supervisor_paged", "call_911")
    assert times == [due, due + timedelta(minutes=2), due + timedelta(minutes=5), due + timedelta(minutes=10), None]
    with pytest.raises(ValueError, match="in order"):
        step_offsets(0, 5, 2, 10)


def test_pairs_only_rules_match_a_kind_or_a_kind_and_risk_level() -> None:
    rules = PairsOnly(parse_pairs_only("self_harm_risk:high, overdose"))
    assert rules.rule_for("self_harm_risk", "high") == "self_harm_risk:high"
    assert rules.rule_for("self_harm_risk", "moderate") is None
    assert rules.rule_for("self_harm_risk", None) is None
    assert rules.rule_for("overdose", None) == "overdose"
    assert PairsOnly().rule_for("overdose", None) is None


@pytest.mark.parametrize("text", ["P1", "overdose=0", "overdose=x", "=5", "overdose=241"])
def test_a_bad_interval_override_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_minutes_by(text)


def test_duress_words_are_a_comma_separated_list_and_empty_means_off() -> None:
    assert parse_duress_words("") == ()
    assert parse_duress_words(" pineapple ,  blue   heron,") == ("pineapple", "blue heron")


def test_the_settings_read_the_field_policy_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRISIS_CHECKIN_MINUTES", "20")
    monkeypatch.setenv("CRISIS_CHECKIN_MINUTES_BY", "self_harm_risk:P1=10")
    monkeypatch.setenv("CRISIS_CHECKIN_SUPERVISOR_MINUTES", "6")
    monkeypatch.setenv("CRISIS_DURESS_WORDS", "pineapple")
    monkeypatch.setenv("CRISIS_PAIRS_ONLY", "self_harm_risk:high,overdose")
    monkeypatch.setenv("CRISIS_ETA_GRACE_MINUTES", "7")
    policy = DispatcherSettings(var_dir=tmp_path).field_policy()
    assert policy.check_in.interval("withdrawal", "P2") == 20
    assert policy.check_in.interval("self_harm_risk", "P1") == 10
    assert policy.check_in.step_after[2] == timedelta(minutes=6)
    assert policy.duress_words == ("pineapple",)
    assert policy.pairs_only.rules == ("self_harm_risk:high", "overdose")
    assert (policy.eta_grace, policy.ems_confirm) == (timedelta(minutes=7), timedelta(minutes=20))


def test_the_defaults_are_fifteen_minutes_no_duress_word_and_high_risk_self_harm_in_pairs(tmp_path) -> None:
    policy = DispatcherSettings(var_dir=tmp_path).field_policy()
    assert policy.check_in.interval("overdose", "P1") == 15
    assert policy.duress_words == ()
    assert policy.pairs_only.rules == ("self_harm_risk:high",)


@pytest.mark.parametrize(
    ("name", "value"),
    [("CHECKIN_MINUTES_BY", "nonsense"), ("PAIRS_ONLY", "a:b:c"), ("ORG_TIME_ZONE", "Mars/Olympus")],
)
def test_bad_field_settings_are_refused(monkeypatch, tmp_path, name: str, value: str) -> None:
    monkeypatch.setenv(f"CRISIS_{name}", value)
    with pytest.raises(ValidationError):
        DispatcherSettings(var_dir=tmp_path)


def test_a_drill_may_shorten_the_check_in_minute(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRISIS_CHECKIN_MINUTE_SECONDS", "5")
    check_in = DispatcherSettings(var_dir=tmp_path).field_policy().check_in
    assert check_in.due_at("overdose", "P1", T) == T + timedelta(seconds=75)  # 15 "minutes" of 5 s
    assert check_in.prompt_before == timedelta(seconds=10)
    assert check_in.step_after == tuple(timedelta(seconds=s) for s in (0, 10, 25, 50))
