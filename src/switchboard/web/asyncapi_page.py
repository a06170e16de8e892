"""`/asyncapi`: the AsyncAPI document as a page for people, rendered on the server.

The AsyncAPI project's own viewer is a React bundle loaded from a CDN (a blank page
offline); this page needs no script at all. It walks the document the server already
publishes (`/asyncapi.json`, one source of truth): channels, then what clients send and
what the server sends with each message's fields, the close codes, and every schema.
All text from the document is escaped; `backticks` become code spans.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from switchboard.realtime.asyncapi import document

JSON = Mapping[str, Any]
_CODE = re.compile(r"`([^`]+)`")
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem 1.5rem;
color:#1d232b;background:#fff}
code{font:13px ui-monospace,monospace;background:#eef1f5;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #d5dae1;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f9}section{border-top:1px solid #d5dae1;margin-top:1.5rem}
.send{color:#0b6e2e}.receive{color:#14508c}nav a{margin-right:1rem}
"""


@cache
def render() -> str:
    """The page (built once: the document does not change while the process runs)."""
    doc: JSON = json.loads(document())
    info = doc["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_esc(info['title'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(info['title'])} <small>{_esc(info['version'])}</small></h1>",
        "<nav><a href='asyncapi.json'>asyncapi.json</a><a href='docs'>REST (Swagger UI)</a>"
        "<a href='redoc'>REST (ReDoc)</a><a href='#schemas'>Schemas</a></nav>",
        f"<p>{_text(info.get('description', ''))}</p>",
    ]
    for name, channel in doc["channels"].items():
        parts.append(_channel(doc, name, channel))
    parts.append("<section id='schemas'><h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(f"<h3 id='schema-{_esc(name)}'>{_esc(name)}</h3>{_schema(schema)}")
    parts.append("</section></body></html>")
    return "".join(parts)


def _channel(doc: JSON, name: str, channel: JSON) -> str:
    rows = [
        f"<section id='channel-{_esc(name)}'><h2>{_esc(channel.get('title', name))}</h2>",
        f"<p><code>{_esc(channel['address'])}</code></p><p>{_text(channel['description'])}</p>",
    ]
    for operation in doc["operations"].values():
        if operation["channel"]["$ref"] != f"#/channels/{name}":
            continue
        who = "Client sends" if operation["action"] == "receive" else "Server sends"
        rows.append(f"<h3 class='{_esc(operation['action'])}'>{who}</h3>")
        if "summary" in operation:
            rows.append(f"<p>{_text(operation['summary'])}</p>")
        for ref in operation["messages"]:
            rows.append(_message(_resolve(doc, ref["$ref"])))
        for ref in operation.get("reply", {}).get("messages", []):
            message = _resolve(doc, ref["$ref"])
            rows.append(f"<p>Reply: <code>{_esc(message['name'])}</code></p>")
    codes = channel.get("x-close-codes")
    if codes:
        rows.append(
            "<h3>Close codes</h3><table><tr><th>code</th><th>name</th><th>meaning</th></tr>"
        )
        rows.extend(
            f"<tr><td>{code['code']}</td><td><code>{_esc(code['name'])}</code></td>"
            f"<td>{_text(code['description'])}</td></tr>"
            for code in codes
        )
        rows.append("</table>")
    rows.append("</section>")
    return "".join(rows)


def _message(message: JSON) -> str:
    payload = message["payload"]
    name = payload["$ref"].rsplit("/", 1)[-1] if "$ref" in payload else None
    link = f" (<a href='#schema-{_esc(name)}'>{_esc(name)}</a>)" if name else ""
    summary = f"<p>{_text(message['summary'])}</p>" if "summary" in message else ""
    return f"<h4><code>{_esc(message['name'])}</code>{link}</h4>{summary}"


def _schema(schema: JSON) -> str:
    """A schema as prose and, for an object, a table of its fields."""
    intro = f"<p>{_text(schema['description'])}</p>" if "description" in schema else ""
    properties: JSON = schema.get("properties", {})
    if not properties:
        return f"{intro}<p>{_type(schema)}</p>"
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{_esc(field)}</code></td><td>{_type(spec)}</td>"
        f"<td>{'yes' if field in required else ''}</td>"
        f"<td>{_text(spec.get('description', ''))}</td></tr>"
        for field, spec in properties.items()
    )
    return (
        f"{intro}<table><tr><th>field</th><th>type</th><th>required</th><th>what</th></tr>"
        f"{rows}</table>"
    )


def _type(spec: JSON) -> str:
    """A field's type in a few words: a link for a `$ref`, the constant, the choices."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"<a href='#schema-{_esc(name)}'>{_esc(name)}</a>"
    if "const" in spec:
        return f"<code>{_esc(json.dumps(spec['const']))}</code>"
    if "enum" in spec:
        return " | ".join(f"<code>{_esc(json.dumps(v))}</code>" for v in spec["enum"])
    for combined in ("oneOf", "anyOf"):
        if combined in spec:
            return " or ".join(_type(option) for option in spec[combined])
    kind = spec.get("type", "any")
    if kind == "array" and "items" in spec:
        return f"array of {_type(spec['items'])}"
    return _esc(" | ".join(kind) if isinstance(kind, list) else str(kind))


def _resolve(doc: JSON, ref: str) -> JSON:
    """Follow a local `$ref` (and the one a channel's message makes to components)."""
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(doc, node["$ref"]) if "$ref" in node and len(node) == 1 else node


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _text(text: str) -> str:
    """Escaped prose, `code` spans kept, paragraphs' line breaks folded."""
    return _CODE.sub(r"<code>\1</code>", _esc(" ".join(_lines(text))))


def _lines(text: str) -> Iterable[str]:
    return (line.strip() for line in text.splitlines())
