import pytest

from kernel.sched.pacer import Pacer


def test_bucket_refills_at_the_limit_rate_up_to_the_burst():
    p = Pacer(burst=0.25, period=60.0)
    assert p.ready_at("input_tokens", 0.0, 6000, 1500) == 0.0  # starts full: 1500
    p.debit("input_tokens", 0.0, 6000, 1500)
    assert p.ready_at("input_tokens", 0.0, 6000, 1000) == pytest.approx(10.0)  # 100/s
    assert p.level("input_tokens", 100.0, 6000) == 1500  # never above the burst


def test_a_call_larger_than_the_bucket_goes_when_full_and_leaves_debt():
    p = Pacer(burst=0.25, period=60.0)
    assert p.ready_at("input_tokens", 0.0, 6000, 5000) == 0.0
    p.debit("input_tokens", 0.0, 6000, 5000)
    assert p.level("input_tokens", 0.0, 6000) == -3500
    assert p.ready_at("input_tokens", 0.0, 6000, 100) == pytest.approx(36.0)


def test_clamp_credit_limit_change_and_unlimited():
    p = Pacer(burst=0.5, period=60.0)
    p.clamp("requests", 0.0, 10, headroom=1)  # the window had room for one only
    assert p.level("requests", 0.0, 10) == 1
    p.credit("requests", 0.0, 10, 3)
    assert p.level("requests", 0.0, 10) == 4
    p.debit("requests", 0.0, 20, 0)  # limit doubled: the room grows by as much at once
    assert p.level("requests", 0.0, 20) == 9
    assert p.ready_at("requests", 0.0, None, 10**9) == 0.0  # no limit: no pacing
    with pytest.raises(ValueError):
        Pacer(burst=0)
