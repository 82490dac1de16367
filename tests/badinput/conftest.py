"""The files here are malformed on purpose (read by tests/test_robust_badinput.py): never
collect them as scenario files (evalkit's pytest plugin collects YAML under given paths)."""

collect_ignore_glob = ["*"]
