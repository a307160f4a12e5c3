"""The cloud's HTTP API (FastAPI): members, enrolment, visits, ingest health."""
