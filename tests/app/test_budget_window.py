"""The Budget window against the fake kernel client (whose report is the real scheduler's)."""
from __future__ import annotations

import threading
import time

import pytest

from app.bridge import KernelBridge
from app.models import BudgetModel, SpendModel
from app.tray import TrayApp
from app.windows.budget import BudgetWindow
from kernel.sched import Budget, Scheduler, Usage
from tests.fakes.kernel_client import FakeKernelClient


@pytest.fixture
def window(qtbot, bridge: KernelBridge):  # type: ignore[no-untyped-def]
    w = BudgetWindow(bridge, refresh_ms=200)
    qtbot.addWidget(w)
    return w


def _limit(w: BudgetWindow, key: str) -> str:
    record = w.limits.record(w.limits.row_of(key))
    assert record is not None
    return str(record["limit"])


def test_models_read_the_schedulers_report() -> None:
    s = Scheduler(Budget(input_tokens_per_minute=1000, usd_per_month=20))
    s.restore_spend("sorter", time.time(), requests=2, usd=0.25,
                    usage=Usage(input_tokens=100, output_tokens=50,
                                cache_creation_input_tokens=20, cache_read_input_tokens=900))
    limits, spend = BudgetModel(), SpendModel()
    limits.set_report(s.report())
    spend.set_report(s.report())
    keys = [r["key"] for r in limits.records()]
    assert keys == ["input_tokens_per_minute", "output_tokens_per_minute", "requests_per_minute",
                    "max_concurrent", "usd_per_day", "usd_per_month", "policy"]
    rows = {r["key"]: r for r in limits.records()}
    assert rows["input_tokens_per_minute"]["limit"] == "1000"
    assert rows["output_tokens_per_minute"]["limit"] == "unlimited"
    assert rows["usd_per_month"]["limit"] == "20.0" and rows["policy"]["limit"] == "fair"
    assert spend.records() == [{"agent": "sorter", "tokens_today": 170, "cached_today": 900,
                                "usd_today": "0.2500", "usd_month": "0.2500"}]


def test_shows_limits_spend_and_waits_and_sets_a_limit(qtbot, window: BudgetWindow,
                                                       fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    fake.record_spend("sorter", 0.125, Usage(input_tokens=300, output_tokens=40,
                                             cache_read_input_tokens=2000))
    window.show()
    qtbot.waitUntil(lambda: window.limits.rowCount() == 7, timeout=3000)
    assert _limit(window, "input_tokens_per_minute") == "40000"
    assert _limit(window, "usd_per_day") == "5.0"
    qtbot.waitUntil(lambda: window.spend.rowCount() == 1, timeout=3000)
    row = window.spend.record(0)
    assert row == {"agent": "sorter", "tokens_today": 340, "cached_today": 2000,
                   "usd_today": "0.1250", "usd_month": "0.1250"}
    assert window.waiting.text() == "No agent waits for the budget."

    assert not window.set_button.isEnabled()
    window.select_key("usd_per_day")
    window.value_edit.setText("12.5")
    assert window.set_button.isEnabled()
    window.set_button.click()
    qtbot.waitUntil(lambda: _limit(window, "usd_per_day") == "12.5", timeout=3000)
    assert fake.called("set_budget") == [("usd_per_day", "12.5")]
    assert "applied to running agents" in window.status.text()
    assert window.value_edit.text() == ""


def test_a_bad_value_is_explained_not_applied(qtbot, window: BudgetWindow,
                                              fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    window.show()
    qtbot.waitUntil(lambda: window.limits.rowCount() == 7, timeout=3000)
    window.select_key("requests_per_minute")
    window.value_edit.setText("lots")
    window.value_edit.returnPressed.emit()
    qtbot.waitUntil(lambda: window.status.is_error, timeout=3000)
    assert "requests_per_minute" in window.status.text()
    assert _limit(window, "requests_per_minute") == "unlimited"


def test_a_change_made_elsewhere_shows_at_once(qtbot, window: BudgetWindow,
                                               fake: FakeKernelClient, bridge: KernelBridge) -> None:  # type: ignore[no-untyped-def]
    window.show()
    qtbot.waitUntil(lambda: window.limits.rowCount() == 7, timeout=3000)
    # e.g. `deskpilot budget set policy cheapest`, from another thread than the GUI's
    threading.Thread(target=fake.set_budget, args=("policy", "cheapest")).start()
    qtbot.waitUntil(lambda: _limit(window, "policy") == "cheapest", timeout=3000)


def test_the_tray_opens_it(qtbot, bridge: KernelBridge, fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    ui = TrayApp(bridge, lambda: {"running": True}, use_tray=False)
    try:
        assert "Budget…" in [a.text() for a in ui.menu.actions()]
        w = ui.open_budget()
        assert isinstance(w, BudgetWindow) and w.isVisible()
        qtbot.waitUntil(lambda: w.limits.rowCount() == 7, timeout=3000)
    finally:
        ui.shutdown()
        for window in ui.windows.values():
            window.deleteLater()


def test_prices_are_listed_and_set_from_the_window(qtbot, window: BudgetWindow,
                                                   fake: FakeKernelClient) -> None:  # type: ignore[no-untyped-def]
    window.show()
    qtbot.waitUntil(lambda: window.prices.row_of("claude-sonnet-4-5") >= 0, timeout=3000)
    assert window.prices.record(window.prices.rowCount() - 1)["model"] == "*"   # last
    window.prices_table.selectRow(window.prices.row_of("claude-sonnet-4-5"))
    assert (window.price_model.text(), window.price_input.text(),
            window.price_output.text()) == ("claude-sonnet-4-5", "3", "15")

    window.price_model.setText("my-local-model")
    window.price_input.setText("abc")
    window.price_button.click()
    assert window.status.is_error and "numbers" in window.status.text()
    assert fake.called("set_price") == []

    window.price_input.setText("0.5")
    window.price_output.setText("$2")
    window.price_button.click()
    qtbot.waitUntil(lambda: window.prices.row_of("my-local-model") >= 0, timeout=3000)
    row = window.prices.record(window.prices.row_of("my-local-model"))
    assert row == {"model": "my-local-model", "input": "0.5", "output": "2",
                   "cache_write": "0.625", "cache_read": "0.05"}
    assert fake.called("set_price") == [("my-local-model", 0.5, 2.0)]

    window.price_output.setText("-1")
    window.price_button.click()
    qtbot.waitUntil(lambda: window.status.is_error, timeout=3000)
    assert "finite number >= 0" in window.status.text()
