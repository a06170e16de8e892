"""The documentation stands alone and keeps up with the code (no server, no database).

- every setting in `Settings` is documented (README.md's table or a docs/ page);
- no doc points outside the repository (a shared folder, an outside SPEC), and every
  relative link lands on a file of the repository (and on a heading, for `#anchors`);
- docs/protocol.md has a row for every close code in `CloseCode`, and names every error
  code the server sends, in REST JSON errors and in WebSocket `error` frames.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.config import Settings
from switchboard.realtime.codes import CloseCode

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "switchboard"
PROTOCOL = ROOT / "docs" / "protocol.md"
DOCS = sorted([ROOT / "README.md", ROOT / "DEVELOPERS.md", *(ROOT / "docs").rglob("*.md")])

OUTSIDE = re.compile(r"\.\./shared|(?<![\w./-])shared/|\bSPEC\b")
"""How a doc would point outside the repository: a shared folder beside it, an outside SPEC."""
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)

ERROR_CALLS = {"ProtocolError": 0, "error": 0, "encode_error": 0, "_refuse": 2, "error_response": 1}
"""Calls that put an error code on the wire, and the position of the code among their
arguments: `ProtocolError(code, …)`, `protocol.error(code, …)`, `_refuse(ws, close, code,
…)`, `error_response(status, code, …)`."""


def env_name(field: str) -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def doc_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_settings_use_the_prefix_and_no_aliases() -> None:
    """The names below are right only if nothing renames a setting."""
    assert Settings.model_config.get("env_prefix") == "SWITCHBOARD_"
    renamed = [n for n, f in Settings.model_fields.items() if f.alias or f.validation_alias]
    assert renamed == []


def test_every_setting_is_documented() -> None:
    text = "\n".join(doc_text(p) for p in DOCS if p.name != "DEVELOPERS.md")
    missing = [
        env_name(field)
        for field in Settings.model_fields
        if not re.search(rf"{env_name(field)}(?![A-Z0-9_])", text)
    ]
    assert missing == [], "document these in README.md's configuration table or in docs/"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_point_nowhere_outside_the_repository(path: Path) -> None:
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(doc_text(path).splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


def anchors(path: Path) -> set[str]:
    """The `#fragment`s GitHub gives the headings of a Markdown file."""
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", doc_text(path)).splitlines():
        if not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> Iterator[str]:
    for target in LINK.findall(FENCE.sub("", doc_text(path))):
        if not re.match(r"[a-z]+:", target):  # http:, mailto:…: not a file of ours
            yield target


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_land_inside_the_repository(path: Path) -> None:
    broken = []
    for target in links(path):
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        inside = resolved.is_relative_to(ROOT) and resolved.exists()
        heading = inside and (
            not fragment or resolved.suffix != ".md" or fragment in anchors(resolved)
        )
        if not heading:
            broken.append(target)
    assert broken == []


def close_code_section() -> str:
    text = doc_text(PROTOCOL)
    start = text.index("\n## Close codes")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: f"{c.value}-{c.name}")
def test_every_close_code_is_in_the_protocol(code: CloseCode) -> None:
    assert re.search(rf"^\| {code.value} \|", close_code_section(), re.MULTILINE)


def wire_error_codes(root: Path = SRC, calls: Mapping[str, int] = ERROR_CALLS) -> set[str]:
    """Every literal error code passed to a call that sends one (REST or WebSocket), in
    the code under `root`."""
    codes = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name):
                name = func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id != "protocol":  # `protocol.error(…)`, not `log.error(…)`
                    continue
                name = func.attr
            else:
                continue
            position = calls.get(name)
            if position is None or len(node.args) <= position:
                continue
            argument = node.args[position]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                codes.add(argument.value)
    return codes


def app_error_codes() -> set[str]:
    found, todo = set(), [errors.AppError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found | set(errors._STATUS_CODES.values())


def test_the_error_code_scan_finds_codes() -> None:
    """A guard on the scan itself: a rename of the calls it looks for must not empty it."""
    assert {"invalid_json", "too_many_connections", "unauthorized", "internal"} <= (
        wire_error_codes()
    )
    assert {"history_expired", "rate_limited", "validation_error"} <= app_error_codes()


def test_every_error_code_is_in_the_protocol() -> None:
    text = doc_text(PROTOCOL)
    missing = sorted(c for c in wire_error_codes() | app_error_codes() if f"`{c}`" not in text)
    assert missing == [], "docs/protocol.md should say when each is sent and what to do"
