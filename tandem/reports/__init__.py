"""Owner reports: the sentiment log, report figures and CSV exports (no web code)."""
