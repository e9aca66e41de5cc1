"""PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
silently: ``train: {steps: 10}`` then, further down, ``train: {steps: 1000}`` would drop the
first section whole). The error names the key and both lines; ``cgx.config.parse_yaml`` adds the
file. Keys brought in by a merge (``<<: *base``) may be overridden: that is what a merge is for."""
from __future__ import annotations

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping; ``str()`` is one line: the key and both line numbers."""

    def __init__(self, key, first: int, second: int) -> None:
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:76] + " ..."
        super().__init__(problem=f"key {shown} is given twice in one section (line {first} and line {second}); "
                                 f"give it once")
        self.key, self.lines = key, (first, second)


class UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=False)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # not hashable: PyYAML says so itself
                    continue
        return super().construct_mapping(node, deep=deep)
