"""EventBridge Scheduler expressions: `at(...)`, `rate(...)` and AWS's `cron(...)`.

Parsed and validated here, once, so the HTTP API refuses what AWS would refuse (with a message
naming the offending part) and the local ticker fires exactly when AWS would. AWS's cron is
not Unix cron: six fields `minutes hours day-of-month month day-of-week year`, exactly one of
day-of-month and day-of-week is `?`, day-of-week runs 1-7 from SUN, and `L`, `W` and `#` have
their AWS meanings. Pure: no AWS, times are aware datetimes, timezones come from zoneinfo.

No PyPI library fits: pyawscron (the one AWS cron parser) validates nothing (`cron(99 * * * ?
*)` parses), knows only UTC and was last released in 2024; croniter and cronsim speak Unix cron.

Daylight saving: a cron time that does not exist locally (the spring-forward hour) runs that
many minutes later, one that exists twice (fall back) runs once, at its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.errors import InvalidExpression

_AT: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE: Final = re.compile(r"^rate\((\d+) ([a-z]+)\)$")
_CRON: Final = re.compile(r"^cron\((.*)\)$")
_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELD_NAMES: Final = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_RANGES: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
_SEARCH_DAYS: Final = 366 * 8  # a cron that matches nothing for 8 years matches nothing


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`; InvalidExpression when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidExpression(f"unknown timezone {name!r} (use an IANA name)") from exc


@dataclass(frozen=True, slots=True)
class At:
    """One run at a local wall-clock time."""

    moment: datetime  # naive, in the schedule's timezone

    def next_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> datetime | None:
        del anchor
        when = self.moment.replace(tzinfo=tz).astimezone(UTC)
        return when if when > after else None


@dataclass(frozen=True, slots=True)
class Rate:
    """Every `seconds`, counted from the schedule's anchor (its start, else its creation)."""

    seconds: int

    def next_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> datetime | None:
        del tz
        if after < anchor:
            return anchor
        periods = int((after - anchor).total_seconds()) // self.seconds + 1
        return anchor + timedelta(seconds=periods * self.seconds)


@dataclass(frozen=True, slots=True)
class DaySpec:
    """Day-of-month or day-of-week: plain values, or one AWS special (`L`, `W`, `#`)."""

    values: frozenset[int] = frozenset()
    any: bool = False  # `?`
    last: bool = False  # `L` (day-of-month: last day; day-of-week with a value: last such day)
    last_offset: int = 0  # `L-3`: three days before the last day of the month
    weekday_near: int | None = None  # `15W`: the weekday nearest the 15th
    nth: tuple[int, int] | None = None  # `6#3`: the third Friday


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: DaySpec
    months: frozenset[int]
    day_of_week: DaySpec
    years: frozenset[int]

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.day_of_month.any:
            return _weekday_matches(self.day_of_week, day)
        return _month_day_matches(self.day_of_month, day)

    def next_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> datetime | None:
        start = max(after, anchor - timedelta(microseconds=1))
        local = start.astimezone(tz)
        day = local.date()
        for _ in range(_SEARCH_DAYS):
            if day.year > max(self.years):
                return None
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                        when = wall.astimezone(UTC)
                        if when > start:
                            return when
            day += timedelta(days=1)
        return None


Expression = At | Rate | Cron


def parse(text: str) -> Expression:
    """The expression `text` stands for; InvalidExpression naming what is wrong."""
    text = text.strip()
    if text.startswith("at("):
        return _parse_at(text)
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron("):
        match = _CRON.match(text)
        if match is None:
            raise InvalidExpression("cron(...) is missing its closing parenthesis")
        return _parse_cron(match.group(1))
    raise InvalidExpression("an expression is at(...), rate(...) or cron(...)")


def next_run(
    expression: Expression,
    *,
    after: datetime,
    tz: ZoneInfo,
    anchor: datetime,
    end: datetime | None = None,
) -> datetime | None:
    """The first run strictly after `after` (UTC), not before `anchor`, not past `end`."""
    when = expression.next_after(after, tz, anchor)
    if when is None or (end is not None and when > end):
        return None
    return when


def runs_between(
    expression: Expression,
    *,
    after: datetime,
    until: datetime,
    tz: ZoneInfo,
    anchor: datetime,
    end: datetime | None = None,
) -> list[datetime]:
    """Every run in (`after`, `until`], in order."""
    runs: list[datetime] = []
    cursor = after
    while True:
        when = next_run(expression, after=cursor, tz=tz, anchor=anchor, end=end)
        if when is None or when > until:
            return runs
        runs.append(when)
        cursor = when


# -- parsing --------------------------------------------------------------------------------


def _parse_at(text: str) -> At:
    match = _AT.match(text)
    if match is None:
        raise InvalidExpression("at(...) takes a local time as yyyy-mm-ddThh:mm:ss")
    try:
        return At(datetime.fromisoformat(match.group(1)))
    except ValueError as exc:
        raise InvalidExpression(f"at(...): {match.group(1)} is not a valid date and time") from exc


def _parse_rate(text: str) -> Rate:
    match = _RATE.match(text)
    if match is None:
        raise InvalidExpression("rate(...) is rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise InvalidExpression("rate(...): the value must be a positive integer")
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise InvalidExpression("rate(...): the unit is minute(s), hour(s) or day(s)")
    if (value == 1) != (unit == singular):
        raise InvalidExpression("rate(...): use the singular unit for 1 and the plural otherwise")
    return Rate(value * _UNITS[singular])


def _parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != len(_FIELD_NAMES):
        raise InvalidExpression(
            "cron(...) has six fields: minutes hours day-of-month month day-of-week year; "
            f"got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise InvalidExpression("cron(...): exactly one of day-of-month and day-of-week is '?'")
    return Cron(
        minutes=_values(minute, 0),
        hours=_values(hour, 1),
        day_of_month=_day_of_month(dom),
        months=_values(month.upper(), 3, _MONTHS),
        day_of_week=_day_of_week(dow),
        years=_values(year, 5),
    )


def _fail(index: int, text: str, why: str) -> InvalidExpression:
    return InvalidExpression(f"cron(...): {_FIELD_NAMES[index]} field {text!r}: {why}")


def _number(index: int, text: str, names: dict[str, int] | None = None) -> int:
    low, high = _RANGES[index]
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise _fail(index, text, "not a number")
    value = int(text)
    if not low <= value <= high:
        raise _fail(index, text, f"out of range {low}-{high}")
    return value


def _values(text: str, index: int, names: dict[str, int] | None = None) -> frozenset[int]:
    low, high = _RANGES[index]
    found: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise _fail(index, part, "the increment must be a positive integer")
            step = int(step_text)
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = _number(index, first, names), _number(index, last, names)
            if start > stop:
                raise _fail(index, part, "a range runs from low to high")
        else:
            start = _number(index, base, names)
            stop = high if step_text else start
        found.update(range(start, stop + 1, step))
    return frozenset(found)


def _day_of_month(text: str) -> DaySpec:
    index = 2
    if text == "?":
        return DaySpec(any=True)
    if text == "L":
        return DaySpec(last=True)
    if text.startswith("L-"):
        offset = _number(index, text[2:])
        if offset > 30:
            raise _fail(index, text, "L-n needs n below 31")
        return DaySpec(last=True, last_offset=offset)
    if text.endswith("W"):
        return DaySpec(weekday_near=_number(index, text[:-1]))
    return DaySpec(values=_values(text, index))


def _day_of_week(text: str) -> DaySpec:
    index = 4
    text = text.upper()
    if text == "?":
        return DaySpec(any=True)
    if "#" in text:
        day, _, nth = text.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise _fail(index, text, "the n in day#n is 1-5")
        return DaySpec(nth=(_number(index, day, _DAYS), int(nth)))
    if text.endswith("L") and len(text) > 1:
        return DaySpec(values=frozenset({_number(index, text[:-1], _DAYS)}), last=True)
    if text == "L":
        return DaySpec(values=frozenset({7}), last=False)  # AWS: L alone is Saturday
    return DaySpec(values=_values(text, index, _DAYS))


# -- matching days --------------------------------------------------------------------------


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Monday is 2, Sunday is 1


def _weekday_matches(spec: DaySpec, day: date) -> bool:
    weekday = _aws_weekday(day)
    if spec.nth is not None:
        wanted, nth = spec.nth
        return weekday == wanted and (day.day - 1) // 7 + 1 == nth
    if spec.last:
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        return weekday in spec.values and day.day + 7 > days_in_month
    return weekday in spec.values


def _month_day_matches(spec: DaySpec, day: date) -> bool:
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    if spec.last:
        return day.day == days_in_month - spec.last_offset
    if spec.weekday_near is not None:
        return day.day == _nearest_weekday(day.year, day.month, spec.weekday_near)
    return day.day in spec.values


def _nearest_weekday(year: int, month: int, target: int) -> int:
    """`nW`: the weekday nearest day n, never crossing into another month."""
    days_in_month = calendar.monthrange(year, month)[1]
    target = min(target, days_in_month)
    weekday = date(year, month, target).weekday()  # Monday 0 .. Sunday 6
    if weekday == 5:  # Saturday: Friday before, or Monday after on the 1st
        return target - 1 if target > 1 else target + 2
    if weekday == 6:  # Sunday: Monday after, or Friday before on the last day
        return target + 1 if target < days_in_month else target - 2
    return target
