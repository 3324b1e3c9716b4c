"""Cron arithmetic across daylight-saving changes (plain function tests of jobs.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sailplane.workloads.jobs.schedule import ScheduleError, fire_times_between, next_fire, validate

NY = "America/New_York"


def local_day(tz: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """The UTC instants just before the local day starts and just before the next one."""
    zone = ZoneInfo(tz)
    start = datetime(year, month, day, tzinfo=zone).astimezone(UTC)
    end = (datetime(year, month, day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    tick = timedelta(microseconds=1)
    return start - tick, end - tick


def fires_on(cron: str, tz: str, year: int, month: int, day: int) -> list[datetime]:
    start, end = local_day(tz, year, month, day)
    return fire_times_between(cron, tz, start, end, 200)


def hhmm(times: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).strftime("%H:%M %Z") for t in times]


def test_daily_job_in_the_spring_forward_gap_fires_once() -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    times = fires_on("30 2 * * *", NY, 2026, 3, 8)
    assert times == [datetime(2026, 3, 8, 7, 30, tzinfo=UTC)]
    assert hhmm(times, NY) == ["03:30 EDT"]
    # the days around it fire at 02:30 local
    assert hhmm(fires_on("30 2 * * *", NY, 2026, 3, 7), NY) == ["02:30 EST"]
    assert hhmm(fires_on("30 2 * * *", NY, 2026, 3, 9), NY) == ["02:30 EDT"]


def test_daily_job_on_the_fall_back_day_fires_once() -> None:
    # 2026-11-01: clocks fall back from 02:00 EDT to 01:00 EST; 01:00-01:59 happens twice.
    assert fires_on("30 2 * * *", NY, 2026, 11, 1) == [datetime(2026, 11, 1, 7, 30, tzinfo=UTC)]
    repeated = fires_on("30 1 * * *", NY, 2026, 11, 1)
    assert repeated == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]  # the first 01:30 (EDT) only
    assert hhmm(repeated, NY) == ["01:30 EDT"]


def test_hourly_jobs_follow_the_length_of_the_day() -> None:
    assert len(fires_on("30 * * * *", NY, 2026, 3, 8)) == 23
    fall = fires_on("30 * * * *", NY, 2026, 11, 1)
    assert len(fall) == 25 and len(set(fall)) == 25
    assert hhmm(fall, NY)[:3] == ["00:30 EDT", "01:30 EDT", "01:30 EST"]
    assert len(fires_on("30 * * * *", NY, 2026, 6, 1)) == 24
    every_20 = fires_on("*/20 * * * *", NY, 2026, 11, 1)
    assert len(every_20) == 75 and every_20 == sorted(every_20)
    assert all(b - a == timedelta(minutes=20) for a, b in zip(every_20, every_20[1:], strict=False))


def test_names_and_special_fields() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    assert next_fire("0 9 * MAR THU", "UTC", at) == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    assert next_fire("0 0 L * *", "UTC", at) == datetime(2026, 1, 31, tzinfo=UTC)
    validate("0 0 * * FRI", "Europe/Paris")


def test_next_fire_is_strictly_after_and_utc() -> None:
    at = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    assert next_fire("0 2 * * *", None, at) == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    assert next_fire("0 2 * * *", "UTC", at - timedelta(seconds=1)) == at
    naive = datetime(2026, 1, 1, 2, 0)  # naive input is read as UTC
    assert next_fire("@hourly", None, naive) == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    tokyo = next_fire("0 9 * * 1", "Asia/Tokyo", at)  # Mondays 09:00 JST = 00:00 UTC
    assert tokyo == datetime(2026, 1, 5, 0, 0, tzinfo=UTC) and tokyo.tzinfo == UTC


def test_fire_times_between_respects_bounds_and_limit() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    end = start + timedelta(hours=5)
    times = fire_times_between("0 * * * *", "UTC", start, end, 100)
    assert times == [start + timedelta(hours=h) for h in range(1, 6)]  # start excluded, end included
    assert fire_times_between("0 * * * *", "UTC", start, end, 2) == times[:2]
    assert fire_times_between("0 0 29 2 *", "UTC", start, end, 10) == []


@pytest.mark.parametrize("cron,tz", [("not cron", None), ("0 2 * * * *", None), ("0 0 30 2 *", None),
                                      ("0 2 * * *", "Mars/Olympus"), ("60 * * * *", None), ("", None),
                                      ("R * * * *", None), ("H 2 * * *", None), ("@reboot", None)])
def test_validate_refuses(cron: str, tz: str | None) -> None:
    with pytest.raises(ScheduleError):
        validate(cron, tz)
