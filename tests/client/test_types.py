"""The client's result types name exactly the fields the server's response models have.

The client is a distribution of its own and cannot import the server's models, so its
`TypedDict`s restate them; this keeps the two from drifting apart."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel

import switchboard_client as client
from switchboard import resources
from switchboard.api import keys
from switchboard.auth.principal import Role

PAIRS: list[tuple[Any, type[BaseModel]]] = [
    (client.Widget, resources.WidgetOut),
    (client.LayoutEntry, resources.LayoutEntry),
    (client.Board, resources.BoardSummary),
    (client.BoardWithWidgets, resources.BoardOut),
    (client.BoardPage, resources.BoardPage),
    (client.EventPage, resources.EventPage),
    (client.Key, keys.KeyOut),
    (client.NewKey, keys.KeyCreated),
    (client.Token, keys.TokenOut),
]


@pytest.mark.parametrize(("typed", "model"), PAIRS, ids=[t.__name__ for t, _ in PAIRS])
def test_fields_match_the_servers_model(typed: Any, model: type[BaseModel]) -> None:
    assert set(typed.__required_keys__) == set(model.model_fields)
    assert not typed.__optional_keys__


def test_an_event_is_the_servers_plus_its_type() -> None:
    assert set(client.Event.__required_keys__) == {*resources.EventOut.model_fields, "type"}


def test_roles_are_the_servers() -> None:
    assert set(get_args(client.Role)) == {role.value for role in Role}
    assert set(get_args(client.TokenRole)) == {role.value for role in get_args(keys.TokenRole)}
