"""Reading a spec file's YAML with bounds: what ``yaml.safe_load`` lets through is refused by name.

``safe_load`` builds no objects of its own choosing, but it still accepts an alias bomb (812 bytes of
nested aliases expanded to 469 MB once pydantic copied the shared lists), nesting deep enough to end
in ``RecursionError``, and duplicate keys, of which it silently keeps the last. Here the document is
composed first (a node graph, aliases shared), measured, then constructed: a spec over ``MAX_BYTES``,
nested past ``MAX_DEPTH`` or expanding to more than ``MAX_NODES`` values is refused before anything is
built, and a key written twice in one mapping is an error naming both lines.

The events come from libyaml's C parser when PyYAML has it (it does in the lock's wheels): scanning
and parsing were ~90% of a spec's load in pure Python, and a spec is loaded at every parse of its
DAG file and by ``mlops-pack check``. libyaml's parser is a state machine (no recursion), and the
composing, with its depth bound, stays the Python one here, so the bounds hold the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from mlops_pack.core.errors import MlopsError

MAX_BYTES = 1_000_000  # a large spec is a few kilobytes
MAX_DEPTH = 50
MAX_NODES = 100_000  # values after expanding aliases; a large spec has a few thousand


class SpecYamlError(MlopsError, ValueError):
    """The file is not a spec's YAML within bounds (the caller names the file)."""


class _Bounds:
    """The bounds, over any loader whose composing is Python's (``yaml.composer.Composer``)."""

    depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise SpecYamlError(f"nested deeper than {MAX_DEPTH} levels (line {self.peek_event().start_mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    raise SpecYamlError(f"key {key!r} is written twice in one mapping (lines {first_line[key]} "
                                        f"and {line}): YAML would keep the last silently")
                first_line[key] = line
            except TypeError:  # an unhashable key: SafeLoader refuses it with its own message
                break
        return super().construct_mapping(node, deep=deep)


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    class _BoundedLoader(_Bounds, Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's events (C), composed and constructed here (Python), as SafeLoader would."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    class _BoundedLoader(_Bounds, yaml.SafeLoader):  # type: ignore[no-redef]
        pass


def expanded_size(node: Node, cap: int = MAX_NODES) -> int:
    """Values in ``node`` with every alias expanded, counted up to just past ``cap``."""
    count, stack = 0, [node]
    while stack and count <= cap:
        current = stack.pop()
        count += 1
        if isinstance(current, SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, MappingNode):
            for pair in current.value:
                stack.extend(pair)
    return count


def read_yaml(path: Path) -> Any:
    """The document in ``path``; raises OSError, yaml.YAMLError or SpecYamlError saying what is wrong."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SpecYamlError(f"the file is over {MAX_BYTES:,} bytes; a pipeline spec is a few kilobytes")
    loader = _BoundedLoader(data.decode("utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_NODES:
            raise SpecYamlError(f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb?)")
        return loader.construct_document(node)
    finally:
        loader.dispose()
