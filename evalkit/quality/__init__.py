"""Checks of the test suite itself: self-test, judge calibration, mutation testing."""
