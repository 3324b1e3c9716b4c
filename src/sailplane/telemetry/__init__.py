"""What an operator watches: Prometheus metrics (`/metrics`) and structured (JSON) logs.

Wiring-level: it may read any domain's tables (to count states at scrape time); nothing in a domain imports
it except through `telemetry.metrics`, which knows no domain."""
