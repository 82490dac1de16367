"""Numbers from a finished run: headline metrics (``summary``), statistics (``stats``), comparing
two runs (``compare``) and the CI gate (``gate``)."""
