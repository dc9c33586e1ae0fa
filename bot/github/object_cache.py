"""Git objects by (installation, sha) under one memory budget for the process: trees, blob texts, repositories seen."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from bot.github.gateway import TreeFile

# One budget for the whole process (every installation's gateway shares one `GitObjectCache`), so memory does
# not grow with the number of installations: a few large repositories' listings, and their files' texts.
MAX_CACHED_TREE_ENTRIES = 200_000
MAX_CACHED_BLOB_CHARS = 16 * 1024 * 1024
MAX_CACHED_TREES = 1024  # counts bound the objects that cost (next to) nothing: empty trees, binary blobs
MAX_CACHED_BLOBS = 16_384
MAX_SEEN_REPOS = 16_384


@dataclass(frozen=True)
class CacheUsage:
    """What a `GitObjectCache` holds, counted from its contents."""

    trees: int
    tree_entries: int
    blobs: int
    blob_chars: int
    repos_seen: int


_Key = tuple[int, str]  # (installation id, sha or repository name)


class GitObjectCache:
    """Trees and blob texts by (installation, sha), least recently used first out, under one budget.

    Git objects never change, so entries stay valid; only memory bounds them. Keys carry the installation, so
    one installation is never answered from what another read (GitHub checks its access on every read)."""

    def __init__(
        self,
        max_tree_entries: int | None = None,
        max_blob_chars: int | None = None,
        max_trees: int = MAX_CACHED_TREES,
        max_blobs: int = MAX_CACHED_BLOBS,
        max_repos: int = MAX_SEEN_REPOS,
    ) -> None:
        self._max_entries = max_tree_entries  # None: the module's budget, read at each use
        self._max_chars = max_blob_chars
        self._max_trees = max_trees
        self._max_blobs = max_blobs
        self._max_repos = max_repos
        self._trees: OrderedDict[_Key, dict[str, TreeFile]] = OrderedDict()
        self._blobs: OrderedDict[_Key, str | None] = OrderedDict()
        self._seen: OrderedDict[_Key, None] = OrderedDict()
        self._tree_entries = 0
        self._blob_chars = 0
        self._lock = threading.Lock()

    def _budget(self) -> tuple[int, int]:
        return (
            MAX_CACHED_TREE_ENTRIES if self._max_entries is None else self._max_entries,
            MAX_CACHED_BLOB_CHARS if self._max_chars is None else self._max_chars,
        )

    def tree(self, installation_id: int, sha: str) -> dict[str, TreeFile] | None:
        """A cached tree listing (now the most recently used), or None."""
        with self._lock:
            files = self._trees.get((installation_id, sha))
            if files is not None:
                self._trees.move_to_end((installation_id, sha))
            return files

    def put_tree(self, installation_id: int, sha: str, files: dict[str, TreeFile]) -> None:
        """Keep a tree listing, dropping the least recently used ones over the budget (one over it alone: not kept)."""
        max_entries = self._budget()[0]
        if len(files) > max_entries:
            return
        key = (installation_id, sha)
        with self._lock:
            old = self._trees.pop(key, None)
            self._tree_entries -= len(old) if old is not None else 0
            self._trees[key] = files
            self._tree_entries += len(files)
            while len(self._trees) > 1 and (len(self._trees) > self._max_trees or self._tree_entries > max_entries):
                _, dropped = self._trees.popitem(last=False)
                self._tree_entries -= len(dropped)

    def missing(self, installation_id: int, shas: Iterable[str]) -> list[str]:
        """The given blob shas not cached, sorted."""
        with self._lock:
            return sorted({sha for sha in shas if (installation_id, sha) not in self._blobs})

    def blobs(self, installation_id: int, shas: Iterable[str]) -> dict[str, str | None]:
        """Cached texts by sha (None: binary or unreadable), each now the most recently used."""
        found: dict[str, str | None] = {}
        with self._lock:
            for sha in shas:
                key = (installation_id, sha)
                if key in self._blobs:
                    self._blobs.move_to_end(key)
                    found[sha] = self._blobs[key]
        return found

    def put_blob(self, installation_id: int, sha: str, text: str | None) -> None:
        """Keep a blob's text, dropping the least recently used ones over the budget."""
        max_chars = self._budget()[1]
        key = (installation_id, sha)
        with self._lock:
            if key in self._blobs:
                self._blob_chars -= len(self._blobs.pop(key) or "")
            self._blobs[key] = text
            self._blob_chars += len(text or "")
            while len(self._blobs) > 1 and (len(self._blobs) > self._max_blobs or self._blob_chars > max_chars):
                _, dropped = self._blobs.popitem(last=False)
                self._blob_chars -= len(dropped or "")

    def saw(self, installation_id: int, full_name: str) -> None:
        """Remember that this installation read a tree of the repository."""
        with self._lock:
            self._seen[(installation_id, full_name)] = None
            self._seen.move_to_end((installation_id, full_name))
            while len(self._seen) > self._max_repos:
                self._seen.popitem(last=False)

    def has_seen(self, installation_id: int, full_name: str) -> bool:
        """True when this installation read a tree of the repository (and that is still remembered)."""
        with self._lock:
            return (installation_id, full_name) in self._seen

    def usage(self) -> CacheUsage:
        """Counts recomputed from the contents (what the budget bounds)."""
        with self._lock:
            return CacheUsage(
                len(self._trees),
                sum(len(t) for t in self._trees.values()),
                len(self._blobs),
                sum(len(b or "") for b in self._blobs.values()),
                len(self._seen),
            )
