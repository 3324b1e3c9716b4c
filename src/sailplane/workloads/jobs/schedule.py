"""Cron arithmetic in a time zone, correct across daylight-saving changes. UTC in, UTC out.

A cron expression names wall-clock times in the job's time zone. Two days a year that mapping is
not one-to-one, and we follow classic cron (Vixie) there:

* Spring forward: a wall-clock time that does not exist (02:30 in New York on the day clocks jump
  from 02:00 to 03:00) fires once, shifted forward by the gap (03:30 EDT). When that lands on a
  time that fires anyway, it fires once.
* Fall back: a wall-clock time that happens twice (01:30 in New York) fires at its first
  occurrence only, unless the hour field is a wildcard (`*`, `*/2`...), in which case the job
  fires in both occurrences of the hour, so an hourly job runs every hour of the 25-hour day.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from sailplane.kit.clock import as_utc

DEFAULT_TIMEZONE = "UTC"
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# Offsets change by at most a few hours at a transition; candidates this far around `after` cover them.
_WINDOW = timedelta(hours=3)


class ScheduleError(ValueError):
    """The expression or time zone is not usable; the message says why (for a 422)."""


def zone(tz: str | None) -> ZoneInfo:
    name = tz or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r} (use an IANA name such as America/New_York)") from exc


def normalize(cron: str) -> str:
    """The five-field form of an expression (macros expanded), or ScheduleError."""
    text = " ".join(cron.split())
    expanded = MACROS.get(text.lower(), text)
    if len(expanded.split(" ")) != 5:
        raise ScheduleError("must have five fields (minute hour day-of-month month day-of-week) or be a macro "
                            "such as @daily")
    tokens = (t for f in expanded.split(" ") for t in re.split(r"[,/-]", f))
    if any(t[:1].upper() in ("R", "H") for t in tokens):
        # croniter's random (R) and hashed (H) fields would move the schedule from one reading to the next.
        raise ScheduleError("random (R) and hashed (H) fields are not supported")
    if not croniter.is_valid(expanded):
        raise ScheduleError("is not a valid cron expression")
    return expanded


def validate(cron: str, tz: str | None, now: datetime | None = None) -> None:
    """Raises ScheduleError unless the expression parses and fires at some time from `now` on."""
    zone(tz)
    normalize(cron)
    try:
        next_fire(cron, tz, now or datetime.now(UTC))
    except CroniterError as exc:
        raise ScheduleError("never fires (no matching date)") from exc


def _hour_is_wildcard(expr: str) -> bool:
    return expr.split(" ")[1].startswith("*")


def _instants(naive: datetime, tz: ZoneInfo, repeat_in_fold: bool) -> list[datetime]:
    """The UTC instants at which the wall-clock time `naive` fires (none, one or two of them)."""
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(tz).replace(tzinfo=None) != naive:
        # Does not exist (a gap): fold=0 reads it with the offset before the jump, i.e. shifted forward.
        return [first]
    return [first, second] if repeat_in_fold else [first]  # happens twice (a fold)


def _near_transition(tz: ZoneInfo, at: datetime) -> bool:
    before = (at - _WINDOW).astimezone(tz).utcoffset()
    after = (at + _WINDOW).astimezone(tz).utcoffset()
    return before != after


def next_fire(cron: str, tz: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after` (UTC, aware). Raises CroniterError when none exists."""
    expr = normalize(cron)
    tzinfo = zone(tz)
    after = as_utc(after)
    local = after.astimezone(tzinfo).replace(tzinfo=None)
    repeat = _hour_is_wildcard(expr)
    if not _near_transition(tzinfo, after):
        # Wall clock and UTC move together here: the first candidate after `local` is the answer.
        it = croniter(expr, local)
        while True:
            naive = it.get_next(datetime)
            found = [i for i in _instants(naive, tzinfo, repeat) if i > after]
            if found:
                return min(found)
    # Around a transition, wall-clock order and UTC order differ: look at every candidate from a
    # window before `after` and keep the earliest instant after it.
    it = croniter(expr, local - _WINDOW)
    best: datetime | None = None
    while True:
        naive = it.get_next(datetime)
        for instant in _instants(naive, tzinfo, repeat):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and naive - _WINDOW > best.astimezone(tzinfo).replace(tzinfo=None):
            return best


def fire_times_between(cron: str, tz: str | None, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """Fire times t with start < t <= end, oldest first, at most `limit` of them (UTC)."""
    times: list[datetime] = []
    end = as_utc(end)
    current = as_utc(start)
    while len(times) < limit:
        try:
            current = next_fire(cron, tz, current)
        except CroniterError:
            break
        if current > end:
            break
        times.append(current)
    return times
