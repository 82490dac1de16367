"""evalkit inside other tools: the pytest plugin, importers of other tools' conversations, export
to other tools' formats."""
