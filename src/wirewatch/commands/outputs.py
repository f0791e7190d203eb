"""The sinks a command opens from `output.*`: the alert store, syslog and the webhook."""

from __future__ import annotations

from typing import Any

from ..config import Config


def output_sinks(cfg: Config) -> list[Any]:
    """The alert store, the syslog and webhook sinks: opened here, before a sensor drops root."""
    sinks: list[Any] = []
    if cfg.output.db:
        from ..store.postgres_schema import is_postgres  # the store's modules only with a store
    if cfg.output.db and is_postgres(cfg.output.db):
        from ..store.postgres_sink import PostgresSink, postgres_spool  # imported only when used

        sinks.append(PostgresSink(cfg.output.db, postgres_spool(cfg), cfg.store.retention_days,
                                  spool_max_mb=cfg.store.spool_max_mb))
    elif cfg.output.db:
        from ..store.sqlite_sink import SqliteSink  # imported only when used: start-up of `read`

        sinks.append(SqliteSink(cfg.output.db, cfg.store.retention_days, cfg.store.max_db_mb,
                                spool_max_mb=cfg.store.spool_max_mb))
    if cfg.output.syslog:
        from ..sinks.syslog import SyslogSink

        sinks.append(SyslogSink(cfg.output.syslog, cfg.output.syslog_facility))
    if cfg.output.webhook:
        from ..sinks.webhook import WebhookSink

        sinks.append(WebhookSink(cfg.output.webhook, cfg.output.webhook_min_severity, cfg.output.webhook_queue))
    return sinks
