"""docs/js-client.md shows the examples the tests run, character for character."""

from __future__ import annotations

import re

import pytest

from tests.js.conftest import PACKAGE, ROOT

DOC = ROOT / "docs" / "js-client.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(("language", "example"), [("js", "node.mjs"), ("html", "browser.html")])
def test_the_doc_shows_the_example_the_tests_run(language: str, example: str) -> None:
    assert (PACKAGE / "examples" / example).read_text() in blocks(language)
