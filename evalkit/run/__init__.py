"""Playing conversations and recording them: ``play`` (one conversation), the runner (scheduling,
trials, resume), the run folder, the load tester, scoring of recorded conversations."""
