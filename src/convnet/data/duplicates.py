"""Duplicate groups: images that are the same file (``exact``: the same bytes) or copies of
one another (``near``: `convnet.data.similar`), joined into groups. A group that spans
splits leaks: a test image the network has trained on inflates its score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

# A named way to find near-duplicate pairs (i, j, similarity), i < j, among ``count``
# images: find(fetch, count, same), fetch(rows) -> (len(rows), C, H, W) uint8, equal
# ``same`` keys being exact copies already (`convnet.data.similar.near_pairs` is one)
Finder = tuple[str, Callable[[Callable[[Sequence[int]], torch.Tensor], int, Sequence[str]],
                             list[tuple[int, int, float]]]]


@dataclass(frozen=True)
class Group:
    """Images that are copies of one another, in the order the dataset lists them."""

    kind: str  # "exact": every pair the same bytes; "near": some pair only alike
    paths: tuple[str, ...]
    splits: tuple[str, ...]  # each path's split
    labels: tuple[str, ...]  # each path's class
    similarity: float  # the weakest link that joined the group (1.0 for exact)

    @property
    def leaks(self) -> bool:
        """Spans splits: an evaluated image is a copy of a trained one (or the reverse)."""
        return len(set(self.splits)) > 1

    @property
    def mislabelled(self) -> bool:
        """Copies filed under different classes: at least one label is wrong."""
        return len(set(self.labels)) > 1

    @property
    def flagged(self) -> bool:
        """What falsifies a score or a label: it leaks or it is mislabelled."""
        return self.leaks or self.mislabelled

    @classmethod
    def from_dict(cls, values: dict) -> Group:
        """The group `to_dict` wrote (KeyError for anything else)."""
        return cls(values["kind"], tuple(values["paths"]), tuple(values["splits"]),
                   tuple(values["classes"]), float(values["similarity"]))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "paths": list(self.paths), "splits": list(self.splits),
                "classes": list(self.labels), "similarity": round(self.similarity, 4),
                "leaks": self.leaks}

    def describe(self) -> str:
        where = "across splits " + "/".join(dict.fromkeys(self.splits)) if self.leaks \
            else f"in {self.splits[0]}"
        labels = f", classes {' and '.join(dict.fromkeys(self.labels))} differ" \
            if self.mislabelled else ""
        what = "exact duplicates" if self.kind == "exact" else \
            f"near-duplicates (similarity {self.similarity:.3f})"
        return f"{len(self.paths)} {what} {where}{labels}: {', '.join(self.paths)}"


def group(count: int, links: Iterable[tuple[int, int, float, str]], paths: list[str],
          splits: list[str], labels: list[str]) -> list[Group]:
    """Groups from links (i, j, similarity, kind) between ``count`` items, by union-find.

    Groups are ordered by their first member; members by their index.
    """
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    weakest: dict[int, float] = {}
    near: set[int] = set()
    pending = []
    for i, j, similarity, kind in links:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
        pending.append((i, similarity, kind))
    for i, similarity, kind in pending:
        top = root(i)
        weakest[top] = min(weakest.get(top, 1.0), similarity)
        if kind == "near":
            near.add(top)
    members: dict[int, list[int]] = {}
    for i in range(count):
        top = root(i)
        if top in weakest:
            members.setdefault(top, []).append(i)
    return [Group("near" if top in near else "exact", tuple(paths[i] for i in rows),
                  tuple(splits[i] for i in rows), tuple(labels[i] for i in rows),
                  weakest[top])
            for top, rows in sorted(members.items())]


def exact_links(digests: list[str]) -> list[tuple[int, int, float, str]]:
    """(first, later, 1.0, "exact") for every item whose digest an earlier one has."""
    first: dict[str, int] = {}
    links = []
    for index, digest in enumerate(digests):
        if not digest:
            continue
        seen = first.setdefault(digest, index)
        if seen != index:
            links.append((seen, index, 1.0, "exact"))
    return links
