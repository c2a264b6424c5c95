"""An administrator changes a category's time limit on /admin and sees the change, under their name, in the audit log."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from data.accounts.admin.categories import list_categories
from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.chrome import wait_for

pytestmark = pytest.mark.browser


def _text(browser, element_id: str) -> str:
    return browser.execute_script(f"const e = document.getElementById('{element_id}'); return e ? e.innerText : '';")


def test_an_admin_changes_a_time_limit_and_sees_it_in_the_audit_log(browser, server, city):
    user = make_user(city.engine, "admin", username="admin-browser")
    sign_in_browser(browser, server, user["username"], next_path="/admin?tab=categories&lang=en")
    wait_for(
        browser, 'document.querySelector(\'#admin-categories-grid .ag-row[row-index="0"] .ag-cell[col-id="code"]\')', timeout=20
    )

    # Pick the first category in the table: its row fills the form with its current limits.
    cell = browser.find_element(By.CSS_SELECTOR, '#admin-categories-grid .ag-row[row-index="0"] .ag-cell[col-id="code"]')
    code = cell.text.strip()
    cell.click()
    with city.engine.connect() as conn:
        current = {c["code"]: c for c in list_categories(conn)}[code]
    wait_for(browser, f"document.getElementById('admin-categories-ack').value === '{current['ack_1']}'")
    wanted = current["ack_1"] + 7 if current["ack_1"] + 7 <= current["handle_1"] else current["ack_1"] - 1

    ack = browser.find_element(By.ID, "admin-categories-ack")
    ack.send_keys(Keys.CONTROL, "a")
    ack.send_keys(str(wanted))
    browser.find_element(By.CSS_SELECTOR, '[id*="admin-categories-act"][id*="limits"]').click()
    wait_for(browser, f"document.getElementById('admin-categories-message').innerText.includes('Saved: {code} P1.')")
    with city.engine.connect() as conn:
        assert {c["code"]: c for c in list_categories(conn)}[code]["ack_1"] == wanted

    # A refused value says why and changes nothing.
    ack.send_keys(Keys.CONTROL, "a")
    ack.send_keys("-3")
    browser.find_element(By.CSS_SELECTOR, '[id*="admin-categories-act"][id*="limits"]').click()
    wait_for(browser, "document.getElementById('admin-categories-message').innerText.includes('Not saved')")
    assert "more than 0" in _text(browser, "admin-categories-message")

    # The audit log tab shows the change, who made it, and the limit before and after.
    browser.find_element(By.ID, "admin-tab-audit").click()
    wait_for(
        browser,
        "document.querySelector('#admin-audit-grid .ag-row[row-index=\"0\"]') && "
        f"document.querySelector('#admin-audit-grid .ag-row[row-index=\"0\"]').innerText.includes('{code}')",
        timeout=15,
    )
    row = browser.find_element(By.CSS_SELECTOR, '#admin-audit-grid .ag-center-cols-container .ag-row[row-index="0"]').text
    assert "admin-browser" in row and "Time limits" in row
    assert f'"ack_minutes": {wanted}' in row and f'"ack_minutes": {current["ack_1"]}' in row
