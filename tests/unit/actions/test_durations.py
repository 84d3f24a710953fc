import pytest

from actions.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1m5s", 65), ("168h", 604800)],
)
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "10", "10 m", " 10m", "-5m", "1d", "1.5h", "10M", "m", "30m2h"]
)
def test_malformed_durations_name_the_expected_form(text):
    with pytest.raises(ValueError, match="expected a duration such as 30s, 10m, 2h"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0h0m"])
def test_zero_duration_is_rejected(text):
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["169h", "99999999999h"])
def test_huge_duration_is_rejected(text):
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_non_string_duration_is_rejected():
    with pytest.raises(ValueError, match="as a string"):
        parse_duration(600)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (7200, "2h"),
        (1800, "30m"),
        (65, "1m 05s"),
        (0.4, "0.4s"),
        (5400, "1h 30m"),
        (3605, "1h 05s"),
        (45, "45s"),
        (0, "0s"),
        (59.6, "1m"),
    ],
)
def test_durations_format_for_messages(seconds, text):
    assert format_duration(seconds) == text
