"""Structured logs (structlog): JSON lines in production, readable lines on a terminal.

One pipeline for every line. The app's structlog calls and every stdlib logger (uvicorn,
SQLAlchemy, Alembic, asyncio, Python warnings) end in one handler on the root logger,
writing to stdout, whose `ProcessorFormatter` adds the same fields (`timestamp`, `level`,
`event`, `logger`, and whatever is bound with `structlog.contextvars`, such as the
`request_id` of `switchboard.access`), redacts credentials, and renders every line with
the same renderer: one JSON object per line with `SWITCHBOARD_LOG_JSON=true`, readable
console lines otherwise.

uvicorn gets that handler from `logging_config()`, passed as its `log_config` (see
`switchboard.cli.server.server_options`): it applies it in the server process, and again in
each process `--workers N` spawns (the config is pickled along). `create_app()` calls
`configure_logging()`, which sets up structlog and, when nobody has configured logging
yet, applies the same configuration.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from switchboard_client.redaction import REDACTED, SECRET_FIELDS, RedactCredentials, register_secret
from switchboard_client.redaction import redact as redact


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The last processor before rendering: every string value is redacted (the event,
    structured fields, formatted tracebacks), and a field named like a credential
    header (`authorization`, `cookie`) is dropped to `[redacted]` whatever it holds."""
    for key, value in event_dict.items():
        if key.lower() in SECRET_FIELDS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
"""What every line gets, from structlog (before it hands the line to logging) or from a
stdlib logger (`ProcessorFormatter`'s pre-chain). Context variables are read where the
line is logged: the request's task, for uvicorn's lines about a connection too."""


def formatter(json: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The one formatter (named in `logging_config()`, so every process builds its own)."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # a traceback is a string, redacted too
            redact_secrets,
            renderer,
        ],
    )


def logging_config(level: str = "info", *, json: bool = False) -> dict[str, Any]:
    """The stdlib logging configuration (a `dictConfig` dict, uvicorn's `log_config`).

    One stdout handler on the root logger. Switchboard and uvicorn log at `level`; other
    libraries at warning or above (at info, SQLAlchemy would log every statement).
    `uvicorn.access` has no handler, so uvicorn skips its access line altogether:
    `switchboard.access` writes a structured one, with the request id and duration.
    """
    name = level.upper()
    quieter = logging.getLevelName(max(logging.getLevelNamesMapping()[name], logging.WARNING))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structlog": {"()": f"{__name__}.formatter", "json": json}},
        "filters": {"credentials": {"()": "switchboard_client.redaction.RedactCredentials"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "filters": ["credentials"],
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": quieter},
        "loggers": {
            "switchboard": {"level": name},
            "uvicorn": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": name},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(
    level: str = "info", *, json: bool = False, secrets: tuple[str | None, ...] = ()
) -> None:
    """structlog hands its lines to stdlib logging, so they share its one handler.
    `secrets` (the configured credentials) are replaced wherever they appear."""
    for secret in secrets:
        register_secret(secret)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        cache_logger_on_first_use=True,
    )
    if not logging.getLogger().handlers:  # run under a host that configured no logging
        logging.config.dictConfig(logging_config(level, json=json))
    logging.captureWarnings(True)
    for name in ("uvicorn.access", "uvicorn.error"):  # also under a host's own handlers
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
