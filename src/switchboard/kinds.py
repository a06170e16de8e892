"""Widget kinds: what value each accepts, and how `series` points accumulate.

`None` is a valid value for every kind (no data yet). Values are validated on
every write so that a board never holds something its page cannot draw.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from switchboard.errors import ValidationFailed
from switchboard.timefmt import iso

Kind = Literal["number", "text", "status", "gauge", "series", "trend", "table", "list"]
KINDS: tuple[str, ...] = get_args(Kind)
POINT_KINDS = frozenset({"series", "trend"})
"""Kinds whose value is a list of points, appended to with `POST …/points`: a `series` is
drawn as a chart, a `trend` as its latest value with a sparkline of the recent ones."""

MAX_SAFE_INT = 2**53 - 1  # beyond this a browser's Number silently rounds
MAX_TEXT = 10_000
MAX_STATUS = 64
DEFAULT_MAX_POINTS = 100
MAX_POINTS_LIMIT = 10_000
MAX_COLUMNS = 20
MAX_ROWS = 200
MAX_ITEMS = 100
MAX_CELL = 200
"""Characters in a table cell or heading, a list item's label or text value."""
SORTS = (None, "asc", "desc")
VALUE_DOC = (
    "Checked per kind (null is always accepted): number: a finite number; gauge: a number "
    "within config.min..max; status: text of at most 64 characters; text: at most 10,000; "
    'series and trend: a list of points {"t": ISO 8601, "v": number}, the newest '
    'config.max_points kept; table: {"columns": [text, …] (1–20), "rows": [[cell, …], …] '
    '(at most 200, each as long as columns)}; list: [{"label": text, "value": cell}, …] '
    "(at most 100). A cell is a number, text of at most 200 characters, true/false or null."
)
"""The `value` field's description in the OpenAPI document (docs/dashboard.md has more)."""


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INT
    return isinstance(value, float) and math.isfinite(value)


def _number(value: Any, what: str) -> float | int:
    if not _is_number(value):
        raise ValidationFailed(f"{what} must be a finite number (integers within ±2^53)")
    return value  # type: ignore[no-any-return]


def _config_number(config: dict[str, Any], name: str) -> float | int | None:
    value = config.get(name)
    return None if value is None else _number(value, f"config.{name}")


def max_points(config: dict[str, Any]) -> int:
    """How many points a `series` widget keeps (`config.max_points`, default 100)."""
    value = config.get("max_points", DEFAULT_MAX_POINTS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS_LIMIT:
        raise ValidationFailed(f"config.max_points must be an integer from 1 to {MAX_POINTS_LIMIT}")
    return value


MAX_DEPTH = 16
MAX_NODES = 10_000
MAX_JSON_INT = 2**63 - 1


UNCLEAN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff"
"""What no store or browser handles well: NUL and other control characters (tab and
newlines aside), and lone surrogates (not encodable as UTF-8)."""
CLEAN_TEXT_PATTERN = f"^[^{UNCLEAN}]*$"
"""Clean text, as the OpenAPI document's `pattern` of the fields `clean_text` checks."""
_UNCLEAN = re.compile(f"[{UNCLEAN}]")


def clean_text(value: str, what: str = "text") -> str:
    """Refuse text holding any of `UNCLEAN`."""
    if _UNCLEAN.search(value):
        raise ValidationFailed(f"{what} contains a control character or a lone surrogate")
    return value


def check_json(value: Any, what: str) -> None:
    """Bound free-form JSON (configs, values): depth, size, clean strings, sane numbers."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH or nodes > MAX_NODES:
            raise ValidationFailed(f"{what} is nested too deeply or too large")
        if isinstance(item, str):
            clean_text(item, what)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_JSON_INT:
                raise ValidationFailed(f"{what} holds an integer beyond ±2^63")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationFailed(f"{what} holds a number that is not finite")
        elif isinstance(item, dict):
            for key, child in item.items():
                clean_text(key, what)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check the config keys a kind interprets; other keys are kept as given."""
    check_json(config, "config")
    if kind in POINT_KINDS:
        max_points(config)
    elif kind == "list" and config.get("sort") not in SORTS:
        raise ValidationFailed('config.sort must be "asc" or "desc" (or absent: as given)')
    elif kind == "gauge":
        low, high = _config_number(config, "min"), _config_number(config, "max")
        if low is not None and high is not None and low >= high:
            raise ValidationFailed("config.min must be less than config.max")
    return config


def _number_value(value: Any, config: dict[str, Any]) -> Any:
    return _number(value, "value")


def _gauge_value(value: Any, config: dict[str, Any]) -> Any:
    number = _number(value, "value")
    low, high = _config_number(config, "min"), _config_number(config, "max")
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValidationFailed(f"value {number} is outside the gauge's range [{low}, {high}]")
    return number


def _string_value(limit: int) -> Callable[[Any, dict[str, Any]], Any]:
    def check(value: Any, config: dict[str, Any]) -> Any:
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationFailed(f"value must be a string of at most {limit} characters")
        return value

    return check


def _series_value(value: Any, config: dict[str, Any]) -> Any:
    if not isinstance(value, list):
        raise ValidationFailed('value must be a list of points {"t": time, "v": number}')
    return append_points([], value, config)


def _short_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_CELL:
        raise ValidationFailed(f"{what} must be a string of at most {MAX_CELL} characters")
    return value


def _cell(value: Any, what: str) -> Any:
    """A table cell or list value: a number, short text, true/false, or null (empty)."""
    if value is None or isinstance(value, bool) or _is_number(value):
        return value
    if isinstance(value, str):
        return _short_text(value, what)
    raise ValidationFailed(f"{what} must be a number, a string, true/false or null")


def _table_value(value: Any, config: dict[str, Any]) -> Any:
    shape = 'value must be {"columns": ["…", …], "rows": [[…], …]}'
    if not isinstance(value, dict) or set(value) != {"columns", "rows"}:
        raise ValidationFailed(shape)
    columns, rows = value["columns"], value["rows"]
    if not isinstance(columns, list) or not 1 <= len(columns) <= MAX_COLUMNS:
        raise ValidationFailed(f"value.columns must be a list of 1 to {MAX_COLUMNS} headings")
    for number, heading in enumerate(columns):
        _short_text(heading, f"value.columns[{number}]")
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise ValidationFailed(f"value.rows must be a list of at most {MAX_ROWS} rows")
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ValidationFailed(f"value.rows[{number}] must be a list of {len(columns)} cells")
        for column, cell in enumerate(row):
            _cell(cell, f"value.rows[{number}][{column}]")
    return value


def _list_value(value: Any, config: dict[str, Any]) -> Any:
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ValidationFailed(
            f'value must be a list of at most {MAX_ITEMS} items {{"label": …, "value": …}}'
        )
    for number, item in enumerate(value):
        if not isinstance(item, dict) or "label" not in item or not set(item) <= {"label", "value"}:
            raise ValidationFailed(f'value[{number}] must be {{"label": text, "value": …}}')
        _short_text(item["label"], f"value[{number}].label")
        _cell(item.get("value"), f"value[{number}].value")
    return value


_VALIDATORS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "number": _number_value,
    "gauge": _gauge_value,
    "text": _string_value(MAX_TEXT),
    "status": _string_value(MAX_STATUS),
    "series": _series_value,
    "trend": _series_value,
    "table": _table_value,
    "list": _list_value,
}


def validate_value(kind: str, value: Any, config: dict[str, Any]) -> Any:
    """Return the value as stored, or raise `ValidationFailed`."""
    if value is None:
        return None
    check_json(value, "value")
    return _VALIDATORS[kind](value, config)


def _point(raw: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(raw, dict) or not set(raw) <= {"t", "v"} or "v" not in raw:
        raise ValidationFailed('each point must be {"v": number} or {"t": time, "v": number}')
    t = raw.get("t")
    if t is None:
        at = now
    elif isinstance(t, str):
        try:
            at = datetime.fromisoformat(t)
        except ValueError:
            raise ValidationFailed(f"point time {t[:40]!r} is not ISO 8601") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    else:
        raise ValidationFailed("point time must be an ISO 8601 string")
    return {"t": iso(at), "v": _number(raw["v"], "point value")}


def append_points(existing: Any, points: Iterable[Any], config: dict[str, Any]) -> list[Any]:
    """The series after appending `points`, keeping the newest `config.max_points`."""
    now = datetime.now(UTC)
    current = existing if isinstance(existing, list) else []
    merged = current + [_point(raw, now) for raw in points]
    return merged[-max_points(config) :]
