"""The performance benchmark: `python -m cds.bench` (or `bash scripts/benchmark.sh`).

It measures, in one run, the hook path in process against the cost of reading the request
(`orjson.loads` of the same body), the hook endpoint over HTTP against a bare FastAPI endpoint
that only decodes the body, and peak memory for a 10,000-Observation chart. It prints tables
and never fails on timing: behaviour is checked by the tests, speed is measured here.
"""
