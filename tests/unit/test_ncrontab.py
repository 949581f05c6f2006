"""NCRONTAB as the Functions host reads it.

Every expected time below was worked out by hand from the NCRONTAB rules (and a printed calendar),
never by running the code under test: e.g. 1 May 2024 is a Wednesday, so 17 May 2024 is a Friday;
Berlin springs forward on 2024-03-31 (02:00 CET -> 03:00 CEST) and falls back on 2024-10-27
(03:00 CEST -> 02:00 CET); New York springs forward on 2024-03-10 (02:00 EST -> 03:00 EDT) and
falls back on 2024-11-03 (02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from batchk8s.ncrontab import Schedule, ScheduleError, parse

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def at(text: str, tz: ZoneInfo | None = None) -> datetime:
    """An ISO time; with tz, the offset in the text picks the occurrence of a repeated wall time."""
    moment = datetime.fromisoformat(text)
    if tz is None:
        return moment
    return moment.astimezone(tz)


def iso(moments: list[datetime]) -> list[str]:
    return [moment.isoformat() for moment in moments]


# (expression, after, expected next firings) - all in UTC, written without the offset.
UTC_CASES = [
    # every minute / every second; 5 fields mean second 0
    ("* * * * *", "2024-01-01T00:00:00", ["2024-01-01T00:01:00", "2024-01-01T00:02:00"]),
    ("* * * * * *", "2024-01-01T00:00:00", ["2024-01-01T00:00:01", "2024-01-01T00:00:02"]),
    # seconds field with steps and lists
    ("*/15 * * * * *", "2024-01-01T00:00:50",
     ["2024-01-01T00:01:00", "2024-01-01T00:01:15", "2024-01-01T00:01:30"]),
    ("5 0 * * * *", "2024-01-01T10:00:05", ["2024-01-01T11:00:05", "2024-01-01T12:00:05"]),
    ("10,20 * * * * *", "2024-01-01T10:00:20", ["2024-01-01T10:01:10", "2024-01-01T10:01:20"]),
    ("14/1 * * * * *", "2024-01-01T10:00:58",
     ["2024-01-01T10:00:59", "2024-01-01T10:01:14", "2024-01-01T10:01:15"]),
    # minute steps: */5 and start/step (2/5 = 2,7,...,57)
    ("0 */5 * * * *", "2024-01-01T10:07:03", ["2024-01-01T10:10:00", "2024-01-01T10:15:00"]),
    ("2/5 * * * *", "2024-01-01T10:57:30", ["2024-01-01T11:02:00", "2024-01-01T11:07:00"]),
    ("*/100 * * * *", "2024-01-01T10:30:00", ["2024-01-01T11:00:00"]),
    # range with step, lists, reversed range (NCrontab swaps: 5-2 is 2-5)
    ("0 10-20/5 * * *", "2024-01-01T20:00:00",
     ["2024-01-02T10:00:00", "2024-01-02T15:00:00", "2024-01-02T20:00:00"]),
    ("0 0 6,12,18 * * *", "2024-01-01T12:00:00", ["2024-01-01T18:00:00", "2024-01-02T06:00:00"]),
    ("0 0 5-2 * * *", "2024-01-01T05:00:00", ["2024-01-02T02:00:00", "2024-01-02T03:00:00"]),
    # month ends: no 31 February, April or June
    ("0 0 0 31 * *", "2024-01-31T00:00:00",
     ["2024-03-31T00:00:00", "2024-05-31T00:00:00", "2024-07-31T00:00:00"]),
    ("0 0 30 * *", "2024-01-30T00:00:00", ["2024-03-30T00:00:00", "2024-04-30T00:00:00"]),
    ("59 23 28-31 2 *", "2023-02-28T23:59:00", ["2024-02-28T23:59:00", "2024-02-29T23:59:00"]),
    # leap years
    ("0 0 12 29 2 *", "2023-03-01T00:00:00", ["2024-02-29T12:00:00", "2028-02-29T12:00:00"]),
    ("0 0 29 Feb *", "2024-03-01T00:00:00", ["2028-02-29T00:00:00"]),
    ("0 0 29 2 *", "2096-03-01T00:00:00", ["2104-02-29T00:00:00"]),  # 2100 is not a leap year
    # year rollover
    ("0 0 0 1 1 *", "2024-12-31T23:59:59", ["2025-01-01T00:00:00"]),
    # names, any case, full or abbreviated, also in ranges and lists
    ("0 0 1 January *", "2024-06-01T00:00:00", ["2025-01-01T00:00:00"]),
    ("0 0 1 FeB *", "2024-06-01T00:00:00", ["2025-02-01T00:00:00"]),
    ("0 0 1 jul-AUG *", "2024-01-01T00:00:00", ["2024-07-01T00:00:00", "2024-08-01T00:00:00"]),
    ("0 0 9 * * sunday", "2024-05-17T00:00:00", ["2024-05-19T09:00:00", "2024-05-26T09:00:00"]),
    ("0 30 9 * * mon-fri", "2024-05-17T09:30:00", ["2024-05-20T09:30:00", "2024-05-21T09:30:00"]),
    ("0 0 * * MON,Wed", "2024-05-17T00:00:00", ["2024-05-20T00:00:00", "2024-05-22T00:00:00"]),
    ("0 0 1 DECEMBER SaTuRdAy", "2024-01-01T00:00:00", ["2029-12-01T00:00:00"]),
    # day of month AND day of week: Friday the 13th (cron's OR would give Friday 2024-01-05)
    ("0 0 13 * 5", "2024-01-01T00:00:00", ["2024-09-13T00:00:00", "2024-12-13T00:00:00"]),
    ("0 0 0 13 * Fri", "2024-01-01T00:00:00", ["2024-09-13T00:00:00"]),
    # the 1st when it is a Monday: 2024-01-01, then 2024-04-01, then 2024-07-01
    ("0 0 1 * 1", "2023-12-01T00:00:00",
     ["2024-01-01T00:00:00", "2024-04-01T00:00:00", "2024-07-01T00:00:00"]),
    # 29 February on a Monday: leap days move 5 weekdays every 4 years (Thu 2024 -> Mon 2044)
    ("0 0 29 2 1", "2024-01-01T00:00:00", ["2044-02-29T00:00:00"]),
    # spaces: any number of them separate fields
    ("  0   0 * *  *  ", "2024-01-01T00:00:00", ["2024-01-02T00:00:00"]),
]


@pytest.mark.parametrize(("expression", "after", "expected"), UTC_CASES)
def test_next_occurrences_utc(expression: str, after: str, expected: list[str]) -> None:
    result = parse(expression).occurrences(at(after).replace(tzinfo=UTC), len(expected))
    assert [moment.isoformat() for moment in result] == [f"{text}+00:00" for text in expected]


# (expression, zone, after - its offset picks the instant, expected firings).
ZONE_CASES = [
    # half-hour zone without DST
    ("0 0 9 * * *", KOLKATA, "2024-05-17T10:00:00+05:30", ["2024-05-18T09:00:00+05:30"]),
    ("0 0 9 * * *", KOLKATA, "2024-05-17T03:00:00+00:00", ["2024-05-17T09:00:00+05:30"]),
    ("0 0,30 * * * *", KOLKATA, "2024-05-17T00:00:00+00:00",
     ["2024-05-17T06:00:00+05:30", "2024-05-17T06:30:00+05:30"]),
    # Berlin spring forward: 02:30 does not exist; it fires at the instant 02:30 CET would have been
    ("0 30 2 * * *", BERLIN, "2024-03-30T12:00:00+01:00",
     ["2024-03-31T03:30:00+02:00", "2024-04-01T02:30:00+02:00"]),
    ("30 2 * * *", BERLIN, "2024-03-30T12:00:00+01:00", ["2024-03-31T03:30:00+02:00"]),
    # interval across the gap: 02:00 is read as 03:00 CEST, the rest of the lost hour is skipped
    ("0 */30 * * * *", BERLIN, "2024-03-31T01:00:00+01:00",
     ["2024-03-31T01:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"]),
    # Berlin fall back: point in time fires at the first 02:30 only
    ("0 30 2 * * *", BERLIN, "2024-10-26T12:00:00+02:00",
     ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"]),
    # ... and not at the second one when we start between them
    ("0 30 2 * * *", BERLIN, "2024-10-27T02:10:00+01:00", ["2024-10-28T02:30:00+01:00"]),
    ("0 30 2 * * *", BERLIN, "2024-10-27T02:40:00+02:00", ["2024-10-28T02:30:00+01:00"]),
    # interval keeps its real-time rhythm through both passes of the repeated hour
    ("0 */30 * * * *", BERLIN, "2024-10-27T01:45:00+02:00",
     ["2024-10-27T02:00:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-27T02:00:00+01:00",
      "2024-10-27T02:30:00+01:00", "2024-10-27T03:00:00+01:00"]),
    # from the second pass, every later firing in the repeated hour is skipped, however many there are,
    # and the next one found may itself fall in a gap (last Sundays of October and March)
    ("0 15,30,45 2 25-31 3,10 0", BERLIN, "2024-10-27T02:15:00+01:00",
     ["2025-03-30T03:15:00+02:00", "2025-10-26T02:15:00+02:00", "2025-10-26T02:30:00+02:00"]),
    ("0 15,30,45 2 25-31 3,10 0", BERLIN, "2024-10-27T01:50:00+02:00",
     ["2024-10-27T02:15:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-27T02:45:00+02:00",
      "2025-03-30T03:15:00+02:00"]),
    # New York spring forward
    ("0 30 2 * * *", NEW_YORK, "2024-03-09T12:00:00-05:00",
     ["2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"]),
    # New York fall back: 01:30 happens twice, a point-in-time schedule fires at the first
    ("0 30 1 * * *", NEW_YORK, "2024-11-02T12:00:00-04:00",
     ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]),
    ("30 1 * * *", NEW_YORK, "2024-11-03T01:00:00-05:00", ["2024-11-04T01:30:00-05:00"]),
    ("0 */30 * * * *", NEW_YORK, "2024-11-03T00:15:00-04:00",
     ["2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00",
      "2024-11-03T01:00:00-05:00", "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"]),
    # every two hours is point-in-time for the host (no run of consecutive hours); 02:00 is not repeated
    ("0 0 */2 * * *", NEW_YORK, "2024-11-02T23:00:00-04:00",
     ["2024-11-03T00:00:00-04:00", "2024-11-03T02:00:00-05:00", "2024-11-03T04:00:00-05:00"]),
    # wall clock in the zone, not UTC: 09:00 Berlin is 07:00Z in summer, 08:00Z in winter
    ("0 0 9 * * *", BERLIN, "2024-10-26T10:00:00+02:00", ["2024-10-27T09:00:00+01:00"]),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), ZONE_CASES)
def test_next_occurrences_in_zones(expression: str, zone: ZoneInfo, after: str, expected: list[str]) -> None:
    result = parse(expression).occurrences(at(after, zone), len(expected))
    assert iso(result) == expected
    assert all(moment.tzinfo is zone for moment in result)


# Expressions the host rejects, with the field the message must name.
REJECTED = [
    ("", "expression"),
    ("* * * *", "expression"),
    ("* * * * * * *", "expression"),
    ("0 0 12 * * ? 2024", "expression"),
    ("@daily", "expression"),
    ("60 * * * * *", "second"),
    ("*/0 * * * * *", "second"),
    ("* 60 * * * *", "minute"),
    ("60 * * * *", "minute"),
    ("*/0 * * * *", "minute"),
    ("*/-1 * * * *", "minute"),
    ("*/+5 * * * *", "minute"),
    ("*/ * * * *", "minute"),
    ("/5 * * * *", "minute"),
    ("1, * * * *", "minute"),
    (",1 * * * *", "minute"),
    ("1,,2 * * * *", "minute"),
    ("1- * * * *", "minute"),
    ("-1 * * * *", "minute"),
    ("1-2-3 * * * *", "minute"),
    ("*-5 * * * *", "minute"),
    ("a * * * *", "minute"),
    ("1.5 * * * *", "minute"),
    ("1_0 * * * *", "minute"),
    ("\u0663 * * * *", "minute"),  # an Arabic-Indic digit: the host only reads ASCII digits
    ("99999999999 * * * *", "minute"),
    ("0 0\t0 * * *", "hour"),
    ("0 0 25 * * *", "hour"),
    ("0 24 * * *", "hour"),
    ("0 0/0 * * *", "hour"),
    ("0 0 0 0 * *", "day-of-month"),
    ("0 0 0 32 * *", "day-of-month"),
    ("0 0 1-32 * *", "day-of-month"),
    ("0 0 ? * *", "day-of-month"),
    ("0 0 L * *", "day-of-month"),
    ("0 0 1W * *", "day-of-month"),
    ("0 0 Mon * *", "day-of-month"),
    ("0 0 0 * 0 *", "month"),
    ("0 0 0 * 13 *", "month"),
    ("0 0 * Foo *", "month"),
    ("0 0 * Mon *", "month"),
    ("0 0 * Januar1 *", "month"),
    ("0 0 * Januaryx *", "month"),
    ("0 0 0 * * 7", "day-of-week"),
    ("0 0 * * 8", "day-of-week"),
    ("0 0 * * sun-7", "day-of-week"),
    ("0 0 * * Sonntag", "day-of-week"),
    ("0 0 * * Jan", "day-of-week"),
    ("0 0 * * L", "day-of-week"),
    ("0 0 * * 5#3", "day-of-week"),
    ("0 0 * * MON-FRIX", "day-of-week"),
]


@pytest.mark.parametrize(("expression", "field"), REJECTED)
def test_rejected_expressions_name_the_field(expression: str, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(expression)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    if field != "expression":
        assert str(caught.value).startswith(f"{field} field '")


def test_error_message_is_exact() -> None:
    with pytest.raises(ScheduleError, match=r"^hour field '25': value 25 out of range 0-23$"):
        parse("0 0 25 * * *")


DAYS = "Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday"


@pytest.mark.parametrize(("expression", "message"), [
    ("1- * * * *", "minute field '1-': empty value"),
    ("x * * * *", "minute field 'x': 'x' is not a number"),
    ("0 0 * * Foo", f"day-of-week field 'Foo': unknown name 'Foo' (use a number or one of {DAYS})"),
    ("0 0 * * Mon-Fryday", f"day-of-week field 'Mon-Fryday': unknown name 'Fryday' (use a number or one of {DAYS})"),
    ("0 0 * * M0n", "day-of-week field 'M0n': 'M0n' is neither a number nor a name"),
    ("x-5 * * * *", "minute field 'x-5': 'x' is not a number"),
    ("5-x * * * *", "minute field '5-x': 'x' is not a number"),
    ("1-2-3 * * * *", "minute field '1-2-3': '2-3' is not a number"),  # a range splits at its first '-'
    ("70-80 * * * *", "minute field '70-80': value 70 out of range 0-59"),
    ("5-70 * * * *", "minute field '5-70': value 70 out of range 0-59"),
    ("*/0 * * * *", "minute field '*/0': step must be at least 1"),
    ("*/2147483648 * * * *", "minute field '*/2147483648': step 2147483648 is too large"),
    ("*/00000000001 * * * *", "minute field '*/00000000001': step 00000000001 is too large"),  # 11 digits
])
def test_each_value_error_reads_exactly(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(expression)
    assert str(caught.value) == message


def test_rejects_non_string() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(None)  # type: ignore[arg-type]
    assert (str(caught.value), caught.value.field) == ("expression must be a string, not NoneType", "expression")


def test_the_largest_steps_are_accepted() -> None:
    assert parse("*/1000000000 * * * *").minutes == (0,)  # ten digits
    assert parse("*/2147483647 * * * *").minutes == (0,)  # Int32.MaxValue


# Accepted by the host; what each field expands to.
EXPANSIONS = [
    ("0 0 * * 5-1", "days_of_week", (1, 2, 3, 4, 5)),  # reversed range is swapped, not wrapped
    ("0 0 * * fri-mon", "days_of_week", (1, 2, 3, 4, 5)),
    ("0 0 * * Sun,saturday", "days_of_week", (0, 6)),
    ("0 0 * * Tu", "days_of_week", (2,)),  # any prefix of a name
    ("0 0 * Ju *", "months", (6,)),  # first name in calendar order with that prefix: June
    ("0 0 * JANUARY-mar *", "months", (1, 2, 3)),
    ("0 0 */10 * *", "days", (1, 11, 21, 31)),
    ("0 0 28/2 * *", "days", (28, 30)),
    ("0 0 1-10/3 * *", "days", (1, 4, 7, 10)),
    ("*/20 * * * *", "minutes", (0, 20, 40)),
    ("0 */20 * * *", "hours", (0, 20)),
    ("0 0,12,6 * * *", "hours", (0, 6, 12)),
    ("*/30 * * * * *", "seconds", (0, 30)),
    ("* * * * *", "seconds", (0,)),
    ("05 * * * *", "minutes", (5,)),
]


@pytest.mark.parametrize(("expression", "attribute", "values"), EXPANSIONS)
def test_field_expansion(expression: str, attribute: str, values: tuple[int, ...]) -> None:
    assert getattr(parse(expression), attribute) == values


@pytest.mark.parametrize(("expression", "has_seconds"), [("* * * * *", False), ("* * * * * *", True)])
def test_has_seconds(expression: str, has_seconds: bool) -> None:
    schedule = parse(expression)
    assert schedule.has_seconds is has_seconds
    assert schedule.expression == expression


@pytest.mark.parametrize(("expression", "interval"), [
    ("0 */30 * * * *", True),  # hours '*'
    ("*/5 * * * *", True),
    ("0 0-5 9 * * *", True),
    ("10-11 30 9 * * *", True),  # 6 fields: a run of seconds counts, wherever it starts
    ("0 9-10 * * *", True),  # a run of hours that does not start at 0
    ("0 0,1,2 3 * * *", True),  # expands to the run 0-2
    ("30 9 * * * *", True),  # 6 fields: hours '*'
    ("0 30 1 * * *", False),
    ("0 0 */2 * * *", False),  # 0,2,4,...: no run
    ("15 9 * * *", False),
    ("0 0 9 * * *", False),
])
def test_interval_classification(expression: str, interval: bool) -> None:
    assert parse(expression).is_interval is interval


def test_schedule_is_immutable_and_comparable() -> None:
    schedule = parse("0 0 * * MON")
    with pytest.raises(AttributeError):
        schedule.expression = "x"  # type: ignore[misc]
    assert schedule == parse("0 0 * * 1")
    assert len({schedule, parse("0 0 * * 1")}) == 1
    assert isinstance(schedule, Schedule)


@pytest.mark.parametrize(("after", "expected"), [
    ("2024-01-01T12:00:00+00:00", "2024-01-02T12:00:00+00:00"),  # exactly on a firing: strictly after
    ("2024-01-01T12:00:00.000001+00:00", "2024-01-02T12:00:00+00:00"),
    ("2024-01-01T11:59:59.999999+00:00", "2024-01-01T12:00:00+00:00"),
])
def test_strictly_after(after: str, expected: str) -> None:
    assert parse("0 0 12 * * *").next_after(at(after)).isoformat() == expected


def test_naive_means_utc() -> None:
    result = parse("0 */5 * * * *").next_after(datetime(2024, 1, 1, 10, 7))
    assert result == datetime(2024, 1, 1, 10, 10, tzinfo=UTC)
    assert result.utcoffset() is not None and result.utcoffset().total_seconds() == 0


def test_only_datetimes_are_evaluated() -> None:
    with pytest.raises(TypeError, match=r"^expected a datetime, got str$"):
        parse("0 */5 * * * *").next_after("2024-01-01T10:07:00")  # type: ignore[arg-type]


def test_result_is_in_the_zone_of_the_input() -> None:
    result = parse("0 0 9 * * *").next_after(datetime(2024, 5, 17, 3, 0, tzinfo=UTC).astimezone(KOLKATA))
    assert result.tzinfo is KOLKATA
    assert result.isoformat() == "2024-05-17T09:00:00+05:30"


def test_occurrences_count() -> None:
    schedule = parse("0 0 * * * *")
    start = datetime(2024, 1, 1, 22, 30, tzinfo=UTC)
    assert schedule.occurrences(start, 0) == []
    assert iso(schedule.occurrences(start, 4)) == [
        "2024-01-01T23:00:00+00:00", "2024-01-02T00:00:00+00:00",
        "2024-01-02T01:00:00+00:00", "2024-01-02T02:00:00+00:00"]
    assert len(schedule.occurrences(start, 1000)) == 1000
    with pytest.raises(ValueError, match=r"^count must not be negative$"):
        schedule.occurrences(start, -1)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 0 31 4,6,9,11 *", "0 0 30-31 Feb *"])
def test_impossible_schedules_never_fire_and_return_quickly(expression: str) -> None:
    schedule = parse(expression)  # the host accepts these expressions; they just never fire
    assert schedule.never_fires
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert schedule.next_after(start) is None
    assert schedule.occurrences(start, 3) == []
    assert schedule.previous_at_or_before(start) is None


def test_possible_schedules_do_not_claim_to_never_fire() -> None:
    assert not parse("0 0 29 2 *").never_fires
    assert not parse("0 0 31 * *").never_fires


def test_end_of_calendar_returns_none() -> None:
    assert parse("0 0 1 1 *").next_after(datetime(9999, 6, 1, tzinfo=UTC)) is None


def test_skipping_the_repeated_hour_can_reach_the_end_of_the_calendar() -> None:
    second_pass = datetime(9999, 10, 31, 2, 15, tzinfo=BERLIN, fold=1)  # the last DST change before year 10000
    assert parse("0 15,45 2 25-31 10 0").next_after(second_pass) is None


def test_the_last_year_of_the_calendar_is_still_searched() -> None:
    assert parse("0 0 1 1 *").next_after(datetime(9998, 6, 1, tzinfo=UTC)) == datetime(9999, 1, 1, tzinfo=UTC)
    assert parse("0 0 31 12 *").previous_at_or_before(datetime(2, 6, 1, tzinfo=UTC)) == datetime(1, 12, 31, tzinfo=UTC)


# (expression, zone or None for UTC, at, expected latest firing at or before).
PREVIOUS_CASES = [
    ("0 0 12 * * *", None, "2024-01-02T12:00:00+00:00", "2024-01-02T12:00:00+00:00"),  # inclusive
    ("0 0 12 * * *", None, "2024-01-02T11:59:59+00:00", "2024-01-01T12:00:00+00:00"),
    ("0 */5 * * * *", None, "2024-01-01T10:07:03+00:00", "2024-01-01T10:05:00+00:00"),
    ("*/15 * * * * *", None, "2024-01-01T00:00:14+00:00", "2024-01-01T00:00:00+00:00"),
    ("0 0 13 * 5", None, "2024-12-31T00:00:00+00:00", "2024-12-13T00:00:00+00:00"),
    ("0 0 29 2 *", None, "2025-06-01T00:00:00+00:00", "2024-02-29T00:00:00+00:00"),
    ("0 0 0 31 * *", None, "2024-05-01T00:00:00+00:00", "2024-03-31T00:00:00+00:00"),
    ("0 30 9 * * mon-fri", None, "2024-05-20T09:00:00+00:00", "2024-05-17T09:30:00+00:00"),
    ("0 0 9 * * *", KOLKATA, "2024-05-17T08:59:00+05:30", "2024-05-16T09:00:00+05:30"),
    # spring forward: the nonexistent 02:30 fired at 03:30 CEST
    ("0 30 2 * * *", BERLIN, "2024-03-31T03:45:00+02:00", "2024-03-31T03:30:00+02:00"),
    ("0 30 2 * * *", BERLIN, "2024-03-31T03:15:00+02:00", "2024-03-30T02:30:00+01:00"),
    # fall back: the point-in-time firing was the first 02:30
    ("0 30 2 * * *", BERLIN, "2024-10-27T02:45:00+01:00", "2024-10-27T02:30:00+02:00"),
    ("0 30 2 * * *", BERLIN, "2024-10-28T12:00:00+01:00", "2024-10-28T02:30:00+01:00"),
    # fall back: interval firings in both passes
    ("0 */30 * * * *", NEW_YORK, "2024-11-03T01:10:00-04:00", "2024-11-03T01:00:00-04:00"),
    ("0 */30 * * * *", NEW_YORK, "2024-11-03T01:15:00-05:00", "2024-11-03T01:00:00-05:00"),
    ("0 */30 * * * *", NEW_YORK, "2024-11-03T01:45:00-05:00", "2024-11-03T01:30:00-05:00"),
    ("0 */30 * * * *", NEW_YORK, "2024-11-03T02:10:00-05:00", "2024-11-03T02:00:00-05:00"),
]


@pytest.mark.parametrize(("expression", "zone", "moment", "expected"), PREVIOUS_CASES)
def test_previous_at_or_before(expression: str, zone: ZoneInfo | None, moment: str, expected: str) -> None:
    result = parse(expression).previous_at_or_before(at(moment, zone))
    assert result is not None
    assert result.isoformat() == expected


def test_previous_of_naive_means_utc() -> None:
    result = parse("0 0 12 * * *").previous_at_or_before(datetime(2024, 1, 2, 11, 0))
    assert result is not None and result.isoformat() == "2024-01-01T12:00:00+00:00"


@pytest.mark.parametrize(("expression", "zone", "start"), [
    ("0 */30 * * * *", NEW_YORK, "2024-11-02T22:00:00-04:00"),
    ("0 30 1 * * *", NEW_YORK, "2024-11-01T22:00:00-04:00"),
    ("0 */20 * * * *", BERLIN, "2024-03-30T23:00:00+01:00"),
    ("0 30 2 * * *", BERLIN, "2024-10-25T22:00:00+02:00"),
])
def test_previous_agrees_with_next_around_dst(expression: str, zone: ZoneInfo, start: str) -> None:
    """Every firing that next_after produces is what previous_at_or_before sees until the next one."""
    schedule = parse(expression)
    firings = schedule.occurrences(at(start, zone), 12)
    assert len(firings) == 12  # the pairs below cover eleven gaps, not none
    for earlier, later in pairwise(firings):
        # (aware + timedelta is wall-clock arithmetic in Python, so go through UTC)
        gap = later.astimezone(UTC) - earlier.astimezone(UTC)
        halfway = (earlier.astimezone(UTC) + gap / 2).astimezone(zone)
        assert schedule.previous_at_or_before(earlier).isoformat() == earlier.isoformat()
        assert schedule.previous_at_or_before(halfway).isoformat() == earlier.isoformat()
