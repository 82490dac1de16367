"""Safe YAML loading that remembers where every mapping key and list item was written.

``yaml.safe_load`` forgets line numbers; every evalkit error must name ``file:line``, so
this loader builds :class:`LocDict` / :class:`LocList` (plain ``dict`` / ``list``
subclasses that also carry lines) and rejects what a scenario file should never contain:
duplicate keys, alias bombs, timestamps silently turned into dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

__all__ = ["LocDict", "LocList", "YamlSyntaxError", "parse_yaml", "line_of"]

# Aliases are legal YAML and handy (one customer block shared by many scenarios), but what
# a document expands to is copied into every transcript: a few aliases of one big string,
# or a "billion laughs" of nested lists, expand a small file to gigabytes. The expansion
# may be at most this many characters (twice the largest file accepted) and ten times the
# values written, plus this slack.
MAX_EXPANDED_CHARS = 20_000_000
MAX_EXPANDED_NODES_SLACK = 100_000
# Deeper nesting than any scenario needs; the composer recurses per level, so `[[[[...` a
# few thousand deep would otherwise end in RecursionError (or crash the C extension).
MAX_DEPTH = 100


class YamlSyntaxError(Exception):
    """The text is not valid YAML (or uses a construct evalkit refuses); carries the line."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class LocDict(dict):  # type: ignore[type-arg]
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LocList(list):  # type: ignore[type-arg]
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when available: ~10x faster


class _Loader(_Base):  # type: ignore[misc,valid-type]
    pass


def _check_aliases(root: yaml.Node) -> None:
    """Refuse alias bombs, measured on what the document expands to, aliases followed.

    The expansion is sized without walking it: each distinct node's expanded size (its own
    characters plus its children's, aliases included) is computed once, children first, so
    the check costs time linear in the nodes written however large the expansion. Both the
    node count (a "billion laughs" of tiny lists) and the characters (a few aliases of one
    huge string) are capped: either would be copied into every conversation's transcript.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded characters)
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if not children_done:
            if key in on_path:
                raise YamlSyntaxError("a YAML alias (*ref) refers to a node that contains it", node.start_mark.line + 1)
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(key)
        nodes = 1 + sum(sizes[id(c)][0] for c in children)
        chars = (len(node.value) if isinstance(node, yaml.ScalarNode) else 0) + sum(sizes[id(c)][1] for c in children)
        sizes[key] = (nodes, chars)
        if chars > MAX_EXPANDED_CHARS or nodes > 10 * len(sizes) + MAX_EXPANDED_NODES_SLACK:
            what = f"{chars:,} characters" if chars > MAX_EXPANDED_CHARS else f"{nodes:,} values"
            raise YamlSyntaxError(
                f"YAML aliases (*ref) expand the document to more than {what} "
                f"(limit {MAX_EXPANDED_CHARS:,} characters, or ten times the values written)",
                node.start_mark.line + 1,
            )


def _check_depth(text: str) -> None:
    """Refuse absurd nesting before composing: the event stream is parsed iteratively."""
    depth = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlSyntaxError(f"nested more than {MAX_DEPTH} levels deep", event.start_mark.line + 1)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise YamlSyntaxError(
                    f"duplicate key '{key_node.value}' (also on line {seen[key]})",
                    key_node.start_mark.line + 1,
                )
            seen[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)  # merge keys (<<: *base); own keys then win
    out = LocDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    yield out
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise YamlSyntaxError(
                "a mapping key must be a plain value", key_node.start_mark.line + 1
            ) from None
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    out = LocList()
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield out
    out.extend(loader.construct_object(child, deep=True) for child in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
# `date: 2024-05-01` stays the string the author wrote (JSON has no dates).
_Loader.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document safely, keeping lines (raises :class:`YamlSyntaxError`)."""
    loader = _Loader(text)
    try:
        _check_depth(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        raise YamlSyntaxError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()


def line_of(data: Any, loc: Sequence[Any], default: int | None = None) -> int | None:
    """The line of the deepest part of ``loc`` that exists in ``data``."""
    line = getattr(data, "line", None) or default
    cur = data
    for part in loc:
        if isinstance(cur, LocDict) and part in cur:
            line = cur.key_lines.get(part, line)
            cur = cur[part]
        elif isinstance(cur, LocList) and isinstance(part, int) and 0 <= part < len(cur):
            line = cur.item_lines[part]
            cur = cur[part]
        else:
            break
    return line
