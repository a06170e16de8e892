"""Request bodies. Strict: unknown fields and type coercions are refused with 422."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from switchboard.kinds import CLEAN_TEXT_PATTERN, VALUE_DOC, Kind, clean_text
from switchboard.names import SLUG_PATTERN
from switchboard.resources import Span

Slug = Annotated[str, StringConstraints(pattern=rf"^{SLUG_PATTERN}$")]
# The pattern is `clean_text`'s rule, for the document only: pydantic's own pattern engine
# cannot name lone surrogates, and `clean_text` says what is wrong.
_CLEAN = {"pattern": CLEAN_TEXT_PATTERN}
Title = Annotated[str, Field(max_length=200, json_schema_extra=_CLEAN), AfterValidator(clean_text)]
Description = Annotated[
    str, Field(max_length=10_000, json_schema_extra=_CLEAN), AfterValidator(clean_text)
]
MAX_POINTS_PER_REQUEST = 1_000


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def example(body: dict[str, Any]) -> ConfigDict:
    """A request body's example, shown in `/docs` and tried first by the fuzz tests (merged
    with `StrictIn`'s configuration)."""
    return ConfigDict(json_schema_extra={"examples": [body]})


class BoardCreate(StrictIn):
    model_config = example({"slug": "ops", "title": "Operations", "public": True})

    slug: Slug
    title: Title = ""
    description: Description = ""
    public: bool = False


WidgetKey = Annotated[str, StringConstraints(pattern=rf"^{SLUG_PATTERN}$")]
MAX_LAYOUT = 1_000
"""The most entries a board's layout may hold."""


class LayoutIn(StrictIn):
    """One widget's place: list order is tile order; `w`/`h` absent: the kind's default."""

    key: WidgetKey
    w: Span | None = None
    h: Span | None = None


def _unique_keys(entries: list[LayoutIn]) -> list[LayoutIn]:
    seen: set[str] = set()
    for entry in entries:
        if entry.key in seen:
            raise ValueError(f"key {entry.key!r} is in the layout twice")
        seen.add(entry.key)
    return entries


Layout = Annotated[list[LayoutIn], Field(max_length=MAX_LAYOUT), AfterValidator(_unique_keys)]


class BoardPatch(StrictIn):
    model_config = example(
        {"title": "Operations", "layout": [{"key": "cpu", "w": 2, "h": 1}, {"key": "status"}]}
    )

    title: Title | None = None
    description: Description | None = None
    public: bool | None = None
    layout: Layout | None = Field(
        default=None,
        description="The widgets' order and sizes (`w` columns, `h` rows, 1–4); keys not on "
        "the board are kept, widgets not listed come after; `[]`: every kind's default.",
    )


class WidgetPut(StrictIn):
    model_config = example({"kind": "number", "title": "CPU", "value": 42})

    kind: Kind
    title: Title = ""
    config: dict[str, Any] = Field(default_factory=dict)
    value: Any = Field(default=None, description=VALUE_DOC)


class WidgetPatch(StrictIn):
    model_config = example({"value": 42})

    title: Title | None = None
    config: dict[str, Any] | None = None
    value: Any = Field(default=None, description=VALUE_DOC)


class WidgetBatchEntry(WidgetPatch):
    version: Annotated[int, Field(ge=1)] | None = None
    """The version last seen (`If-Match` for this widget); stale: 412, nothing changed."""


class WidgetBatch(StrictIn):
    """`PATCH /api/boards/{slug}/widgets`: each entry as a single widget's PATCH body."""

    model_config = example({"widgets": {"cpu": {"value": 42}}})

    widgets: dict[WidgetKey, WidgetBatchEntry] = Field(min_length=1)


class Point(StrictIn):
    t: Annotated[str, Field(max_length=64)] | None = None
    v: float | int


class PointsIn(StrictIn):
    model_config = example({"points": [{"v": 120}, {"t": "2026-11-23T10:00:00Z", "v": 131}]})

    points: list[Point] = Field(min_length=1, max_length=MAX_POINTS_PER_REQUEST)


def changes(patch: BaseModel, *, nullable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields a PATCH body set; `null` only counts for fields that may be null. Nested
    models are dumped whole (a layout entry without `w` stores `"w": null`)."""
    values = patch.model_dump()
    return {
        name: values[name]
        for name in patch.model_fields_set
        if values[name] is not None or name in nullable
    }
