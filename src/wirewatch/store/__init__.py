"""The alert store: schema and migrations (schema.py), the single writer (sqlite_sink.py),
read-only queries for the dashboard (queries.py) and triage writes (admin.py)."""
