"""`/api/boards/{slug}/widgets`: put, patch, delete widgets and append series points."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response, status

from switchboard.api.deps import (
    Caller,
    IfMatch,
    KeyParam,
    SlugParam,
    State,
    Writer,
    etag,
    readable_board,
)
from switchboard.api.openapi import ANONYMOUS, ETAG, errors
from switchboard.api.schemas import PointsIn, WidgetBatch, WidgetPatch, WidgetPut
from switchboard.api.widget_patch import AnsweredRoute, patch_changes
from switchboard.api.writes import respond, write
from switchboard.errors import PayloadTooLarge, ValidationFailed
from switchboard.resources import WidgetBatchOut, WidgetOut
from switchboard.store import widgets

router = APIRouter(prefix="/boards/{slug}/widgets", tags=["widgets"])


@router.get("/{key}", responses=errors(404, etag=(200,)), openapi_extra=ANONYMOUS)
async def get_widget(
    slug: SlugParam, key: KeyParam, state: State, caller: Caller, response: Response
) -> WidgetOut:
    """One widget, with its version as the `ETag`."""
    async with state.db.read() as session:
        await readable_board(session, slug, caller)
        widget = await widgets.get_widget(session, slug, key)
    response.headers.update(etag(widget.version))
    return WidgetOut.model_validate(widget)


@router.put(
    "/{key}",
    response_model=WidgetOut,
    responses={
        201: {"description": "Created", "model": WidgetOut, "headers": {"ETag": ETAG}},
        **errors(etag=(200,)),
    },
)
async def put_widget(
    slug: SlugParam,
    body: WidgetPut,
    state: State,
    _: Writer,
    expected: IfMatch,
    key: KeyParam,
) -> Response:
    """Create (201) or wholly replace (200) a widget."""
    async with write(state) as tx:
        widget, created = await widgets.put_widget(
            tx,
            slug,
            key,
            kind=body.kind,
            title=body.title,
            config=body.config,
            value=body.value,
            if_match=expected,
        )
        return respond(
            WidgetOut.model_validate(widget),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=etag(widget.version),
        )


async def patch_widget(
    slug: SlugParam, key: KeyParam, body: WidgetPatch, state: State, _: Writer, expected: IfMatch
) -> Response:
    """Change some fields, usually `value`; a series' `value` replaces its points."""
    # The signature documents the operation; `widget_patch.answer` answers it, here and
    # in front of the router (`api.direct`), so this body never runs.
    raise AssertionError("answered by api.widget_patch.answer")


router.add_api_route(
    "/{key}",
    patch_widget,
    methods=["PATCH"],
    response_model=WidgetOut,
    responses=errors(etag=(200,)),
    route_class_override=AnsweredRoute,
)


@router.patch("", response_model=WidgetBatchOut, responses=errors(412))
async def patch_widgets(slug: SlugParam, body: WidgetBatch, state: State, _: Writer) -> Response:
    """Patch several widgets in one transaction: all or nothing, one `widgets.updated`
    event. Each entry is a single widget's PATCH body plus an optional `version`
    (its `If-Match`). 422 names every key that is unknown or invalid; 412 every stale one."""
    limit = state.settings.batch_max_widgets
    if len(body.widgets) > limit:
        raise ValidationFailed(
            f"a batch may change at most {limit} widgets, not {len(body.widgets)}",
            details=[{"loc": ["body", "widgets"], "msg": f"at most {limit} widgets"}],
        )
    batch = {
        key: widgets.Change(patch_changes(entry), entry.version)
        for key, entry in body.widgets.items()
    }
    async with write(state) as tx:
        changed = await widgets.update_widgets(tx, slug, batch)
        _check_event_size(tx.events[-1][1].data, state.settings.max_body_bytes)
        return respond(WidgetBatchOut(widgets=[WidgetOut.model_validate(w) for w in changed]))


def _check_event_size(data: dict[str, Any], limit: int) -> None:
    """The one event holds every changed widget whole (a title change carries a series'
    points): bound it like a request body, so that no batch publishes a frame that slow
    links or the per-connection queue bound (`SWITCHBOARD_WS_QUEUE_MAX_BYTES`) cannot take.
    Raised inside the transaction: nothing is written."""
    size = len(orjson.dumps(data))  # as the frame will carry it
    if size > limit:
        raise PayloadTooLarge(
            f"the batch's event would be {size} bytes, over {limit} "
            "(SWITCHBOARD_MAX_BODY_BYTES): send it as smaller batches"
        )


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_widget(
    slug: SlugParam, key: KeyParam, state: State, _: Writer, expected: IfMatch
) -> Response:
    """Delete the widget (`widget.deleted`); with `If-Match`, only at that version."""
    async with write(state) as tx:
        await widgets.delete_widget(tx, slug, key, if_match=expected)
        return respond(None, status=status.HTTP_204_NO_CONTENT)


@router.post("/{key}/points", response_model=WidgetOut, responses=errors(etag=(200,)))
async def append_points(
    slug: SlugParam, key: KeyParam, body: PointsIn, state: State, _: Writer
) -> Response:
    """Append points to a `series` or `trend` widget; it keeps the newest `config.max_points`."""
    points = [p.model_dump(exclude_none=True) for p in body.points]
    async with write(state) as tx:
        widget = await widgets.append_points(tx, slug, key, points)
        return respond(WidgetOut.model_validate(widget), headers=etag(widget.version))
