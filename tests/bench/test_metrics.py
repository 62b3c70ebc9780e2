"""The benchmark's figures, computed from what the provider saw."""
import pytest

from bench.metrics import WINDOW, _utilisation, jain, max_window, percentile
from bench.provider import CallRecord


def rec(t: float, counted: int, admitted: bool = True) -> CallRecord:
    return CallRecord(t=t, wall=t, agent="bench-00", task=0, turn=0, admitted=admitted,
                      counted_input=counted, cache_read=0, total_input=counted, output=10,
                      generation_s=0.1)


def test_jain_is_one_for_equal_shares_and_one_over_n_for_a_single_winner() -> None:
    assert jain([5, 5, 5, 5]) == pytest.approx(1.0)
    assert jain([10, 0, 0, 0]) == pytest.approx(0.25)
    assert jain([]) is None and jain([0, 0]) is None


def test_percentile_interpolates() -> None:
    assert percentile([0, 10], 50) == 5
    assert percentile([3], 95) == 3
    assert percentile([], 50) is None


def test_max_window_uses_the_same_rolling_rule_as_the_server() -> None:
    points = [(0.0, 10), (59.9, 10), (60.0, 10), (119.9, 5)]
    assert max_window(points) == 20   # (0, 60] holds 59.9 and 60.0; 0.0 has left by 60.0
    assert max_window([(0.0, 7)]) == 7


def test_utilisation_counts_only_windows_wholly_under_saturation() -> None:
    # 100 tokens per second from t = 0: every whole window holds 6000 = the limit.
    records = [rec(t / 10, 10) for t in range(0, 1800)] + [rec(5.0, 999, admitted=False)]
    moments = [m / 2 for m in range(2, 360)]
    ramp_included = _utilisation(records, moments, 6000)
    steady = _utilisation(records, moments, 6000, since=0.0)
    assert steady == pytest.approx(1.0, abs=0.01)
    assert ramp_included is not None and ramp_included < 0.9   # windows reaching before t = 0
    assert _utilisation(records, [WINDOW - 1], 6000, since=0.0) is None
