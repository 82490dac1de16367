"""Shared data and helpers every layer uses: transcripts, results, errors, the plugin registry,
PII detection and masking, prices. Imports no other evalkit package."""
