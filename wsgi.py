"""WSGI entry point: `flask --app wsgi …` and `gunicorn wsgi:app`."""
import gc

from portal import create_app

app = create_app()

# Everything loaded so far (modules, the app, SQLAlchemy's compiled statements) lives as long
# as the process. Frozen, the garbage collector's full collections no longer walk those
# 130,000 objects: under load each one had stopped a gunicorn worker for 33-40 ms every few
# seconds, now under 0.5 ms (docs/benchmarks.md, "The p99 target met (issue 4)").
gc.freeze()
