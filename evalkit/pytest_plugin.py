"""evalkit's pytest plugin (registered through the ``pytest11`` entry point).

Collects scenario files as test items and provides conversation-test fixtures.
"""
