"""Project-wide test settings."""

import os

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run: CI results do not depend on luck,
# and a failure found once is found again. Set HYPOTHESIS_PROFILE=explore to search anew.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else "ci")


# --- headless Chromium (tests/_browser.py) --------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Tests marked ``browser`` skip with the reason when Chromium or Playwright is missing, and
    run after every other test: the session's one Playwright instance keeps an event loop marked
    as running in the test thread, which ``asyncio.run`` in a later test would trip over."""
    from _browser import missing_reason

    reason = missing_reason()
    for item in items:
        if reason and item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))
    # A stable sort: the order inside each group stays as collected (the same in every xdist worker).
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session, driven by Playwright (see tests/_browser.py)."""
    from _browser import LAUNCH_ARGS, chromium_path, missing_reason
    from playwright.sync_api import sync_playwright

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh tab in its own browser context (no shared storage), 1400×900, 30 s timeouts."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def console(page):
    """The console of ``page`` (``console.errors`` after ``console.settle(page)``)."""
    from _browser import ConsoleLog

    return ConsoleLog.watch(page)
