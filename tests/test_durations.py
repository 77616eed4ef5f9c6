"""The duration and date-time grammar, with property-based tests."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.timeutil import isoformat, parse_deadline, parse_duration, parse_instant

UNITS = {"w": 604800, "d": 86400, "h": 3600, "hr": 3600, "m": 60, "s": 1}
groups = st.lists(
    st.tuples(st.integers(0, 9999), st.sampled_from(sorted(UNITS))), min_size=1, max_size=8
)


@given(groups)
def test_any_sequence_of_groups_parses_to_its_sum_up_to_a_century(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = timedelta(seconds=sum(n * UNITS[u] for n, u in parts))
    if expected > timedelta(days=36500):
        with pytest.raises(ValueError, match="100 years"):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected


@given(st.text(max_size=30))
def test_arbitrary_text_either_parses_or_raises_value_error(text):
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert result >= timedelta(0)
    assert text and text[0].isdigit() and not text[-1].isdigit()


@pytest.mark.parametrize("text", ["1", "h", "1H", " 1h", "1h ", "1.5h", "1y", "1ms", "+1h"])
def test_malformed_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_duration_is_at_most_100_characters():
    with pytest.raises(ValueError, match="100 characters"):
        parse_duration("1s" * 51)
    assert parse_duration("1s" * 50) == timedelta(seconds=50)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    )
)
def test_isoformat_round_trips_at_millisecond_precision(moment):
    text = isoformat(moment)
    assert len(text) == 24 and text.endswith("Z")
    assert parse_instant(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_epoch_milliseconds_are_instants():
    assert parse_instant("0") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_instant("1764342245123") == datetime(2025, 11, 28, 15, 4, 5, 123000, tzinfo=UTC)


def test_deadlines_must_be_in_the_future():
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_deadline("1h", now) == now + timedelta(hours=1)
    assert parse_deadline("2026-11-29T00:00:00+01:00", now) == datetime(
        2026, 11, 28, 23, tzinfo=UTC
    )
    for past in ("0s", "2026-11-28T00:00:00Z"):
        with pytest.raises(ValueError, match="future"):
            parse_deadline(past, now)
