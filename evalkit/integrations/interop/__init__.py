"""Interoperability with other evaluation tools' file formats (deepeval goldens, ...)."""
