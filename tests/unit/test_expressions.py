"""Schedule expressions: AWS's at/rate/cron syntax accepted and refused, next runs computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.errors import InvalidExpression
from shared.domain.expressions import Cron, Rate, next_run, parse, runs_between, zone

UTC_ZONE = zone("UTC")
T0 = datetime(2026, 3, 2, 10, 7, tzinfo=UTC)  # a Monday


def _next(text: str, after: datetime, tz: str = "UTC", anchor: datetime = T0) -> datetime | None:
    return next_run(parse(text), after=after, tz=zone(tz), anchor=anchor)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cron(0 12 * * *)", "six fields"),
        ("cron(0 12 * * ? * *)", "six fields"),
        ("cron(0 12 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 12 * * ? *)", "minutes field '60': out of range 0-59"),
        ("cron(0 25 * * ? *)", "hours field '25'"),
        ("cron(0 12 ? * FUNDAY *)", "day-of-week field"),
        ("cron(0 12 ? * 2#6 *)", "1-5"),
        ("cron(0 12 * * ? 1800)", "year field"),
        ("cron(0 12 * * ?", "closing parenthesis"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 minute)", "plural"),
        ("rate(1 hours)", "singular"),
        ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(five minutes)", "rate(value unit)"),
        ("at(2026-02-30T10:00:00)", "not a valid date"),
        ("at(tomorrow)", "yyyy-mm-ddThh:mm:ss"),
        ("every day", "at(...), rate(...) or cron(...)"),
    ],
)
def test_invalid_expressions_are_refused_naming_the_error(text: str, fragment: str) -> None:
    with pytest.raises(InvalidExpression) as refused:
        parse(text)
    assert fragment in refused.value.message


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidExpression, match="Mars/Olympus"):
        zone("Mars/Olympus")


def test_cron_fields_parse_the_aws_way() -> None:
    expression = parse("cron(0/15 8-10 ? JAN-MAR MON-FRI 2026-2027)")
    assert isinstance(expression, Cron)
    assert expression.minutes == {0, 15, 30, 45}
    assert expression.hours == {8, 9, 10}
    assert expression.months == {1, 2, 3}
    assert expression.day_of_week.values == {2, 3, 4, 5, 6}
    assert expression.years == {2026, 2027}
    assert parse("rate(1 hour)") == Rate(3600)
    assert parse("rate(90 minutes)") == Rate(5400)


def test_cron_next_runs_in_utc_and_in_a_timezone() -> None:
    # Given every weekday at 09:30
    assert _next("cron(30 9 ? * MON-FRI *)", T0) == datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
    # In New York (UTC-5 in early March) that is 14:30 UTC, today still
    assert _next("cron(30 9 ? * MON-FRI *)", T0, "America/New_York") == datetime(
        2026, 3, 2, 14, 30, tzinfo=UTC
    )
    # Friday's run is followed by Monday's
    friday = datetime(2026, 3, 6, 9, 31, tzinfo=UTC)
    assert _next("cron(30 9 ? * MON-FRI *)", friday) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)


def test_cron_specials_l_w_and_hash() -> None:
    assert _next("cron(0 0 L * ? *)", T0) == datetime(2026, 3, 31, tzinfo=UTC)
    assert _next("cron(0 0 L-2 * ? *)", T0) == datetime(2026, 3, 29, tzinfo=UTC)
    # 2026-03-15 is a Sunday: 15W is Monday the 16th; 2026-08-01 is a Saturday: 1W is Monday 3rd
    assert _next("cron(0 0 15W * ? *)", T0) == datetime(2026, 3, 16, tzinfo=UTC)
    assert _next("cron(0 0 1W AUG ? *)", T0) == datetime(2026, 8, 3, tzinfo=UTC)
    # third Friday of March 2026 is the 20th; last Friday is the 27th
    assert _next("cron(0 0 ? * 6#3 *)", T0) == datetime(2026, 3, 20, tzinfo=UTC)
    assert _next("cron(0 0 ? * 6L *)", T0) == datetime(2026, 3, 27, tzinfo=UTC)
    # a year that has passed never runs again
    assert _next("cron(0 0 * * ? 2025)", T0) is None


def test_daylight_saving_gap_runs_later_and_overlap_runs_once() -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 → 03:00: 02:30 does not exist that day
    spring = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert _next("cron(30 2 * * ? *)", spring, "Europe/Berlin") == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # and falls back on 2026-10-25 at 03:00 → 02:00: 02:30 exists twice, runs once
    autumn = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    runs = runs_between(
        parse("cron(30 2 * * ? *)"),
        after=autumn,
        until=autumn + timedelta(hours=20),
        tz=zone("Europe/Berlin"),
        anchor=T0,
    )
    assert runs == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_rate_counts_from_its_anchor_and_at_runs_once() -> None:
    rate = parse("rate(2 hours)")
    assert next_run(rate, after=T0, tz=UTC_ZONE, anchor=T0) == T0 + timedelta(hours=2)
    later = T0 + timedelta(hours=5)
    assert next_run(rate, after=later, tz=UTC_ZONE, anchor=T0) == T0 + timedelta(hours=6)
    end = T0 + timedelta(hours=5)
    assert next_run(rate, after=later, tz=UTC_ZONE, anchor=T0, end=end) is None
    at = parse("at(2026-03-02T12:00:00)")
    tokyo = zone("Asia/Tokyo")
    assert next_run(at, after=T0 - timedelta(days=1), tz=tokyo, anchor=T0) == datetime(
        2026, 3, 2, 3, 0, tzinfo=UTC
    )
    assert next_run(at, after=T0, tz=tokyo, anchor=T0) is None
