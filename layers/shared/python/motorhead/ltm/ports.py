"""Ports of long-term memory: the embedder, the vector index and the keyword index (kept apart from the core's ports
so that the HTTP functions that do not search never import numpy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from motorhead.core.values import SessionRef, StoredMessage, UserRef
from motorhead.ltm.recipe import DenseText
from motorhead.ltm.vectors import Vectors as Vectors  # re-exported: the ports speak of it

if TYPE_CHECKING:
    from motorhead.ltm.bm25 import SessionTexts


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate of a search: the message, its cosine distance to the query (0 = same direction, 2 = opposite),
    and its keyword relevance (BM25; None when the keyword search did not find it)."""

    message: StoredMessage
    distance: float
    keyword: float | None = None


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a fusion starts from: each session's texts (the keyword side) and the vector side's nearest messages,
    worked out when ``nearest`` is called (so that the caller can score the texts meanwhile)."""

    texts: list[SessionTexts]
    nearest: Callable[[], list[tuple[int, Scored]]]
    owned: list[bool] | None = None  # asked for an owner: whether each session was bound to it when read (else empty)


@dataclass(frozen=True, slots=True)
class UserLookup:
    """``Lookup`` of a user's listed sessions, the listing read in the same step: the sessions (newest first) and
    their lookup, each session bound to the user when read (``Lookup.owned``) or read as empty. ``recheck``, when
    given, must be called with the positions of the sessions whose results the caller keeps if it read anything of
    them after the lookup: the positions of those still the user's, of the generation the lookup read."""

    sessions: list[SessionRef]
    lookup: Lookup
    recheck: Callable[[set[int]], set[int]] | None = None


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors, in batches."""

    @property
    def identity(self) -> str:
        """What made the vectors, e.g. ``onnx:all-MiniLM-L6-v2-int8:384`` or ``openai:text-embedding-3-small:1536``:
        recorded with the index, so vectors of different embedders are never mixed."""
        ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Shape ``(len(texts), dimensions)``, each row of unit length."""
        ...


class VectorIndex(Protocol):
    """Where a session's vectors are stored and searched. Both backends also append each indexed message to the
    session's ``docs`` list, which the keyword (BM25) side of hybrid search reads, whatever the backend."""

    @property
    def name(self) -> str:
        """``exact`` or ``search``."""
        ...

    def ensure_ready(self, *, embedder: str, dimensions: int) -> DenseText:
        """Create what the backend needs (race-safe) and check the recorded embedder; a mismatch raises ConfigError.
        Returns what the index records its messages are embedded from (``ltm/recipe.py``)."""
        ...

    def add(self, session: SessionRef, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        """Index messages idempotently (an id already indexed is skipped), only if the session is still generation
        ``generation`` (not deleted meanwhile); returns how many were added. One atomic script on the session's slot."""
        ...

    def vector_search(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        """The ``k`` nearest messages of the session, nearest first (``query`` has shape ``(dimensions,)``)."""
        ...

    def distances(self, session: SessionRef, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        """Cosine distances of these indexed messages to ``query`` (ids not indexed are left out)."""
        ...

    def vector_search_many(self, sessions: Sequence[SessionRef], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        """The ``k`` nearest messages of all these sessions together, nearest first, each with the position of its
        session in ``sessions`` (a user's history: one search, whatever the number of sessions)."""
        ...

    def distances_many(
        self, wanted: Sequence[tuple[SessionRef, Sequence[int]]], query: Vectors
    ) -> list[dict[int, float]]:
        """``distances`` of each session's ids, in one read: one dict per item of ``wanted``."""
        ...

    @property
    def checks_owner(self) -> bool:
        """Whether ``lookup_many(..., keywords=self, owner=...)`` reads each session's binding in the same step as its
        rows (then a user-level search needs no other check of the bindings)."""
        ...

    def lookup_many(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        keywords: KeywordIndex,
        *,
        owner: str | None = None,
    ) -> Lookup:
        """The texts of these sessions as ``keywords`` holds them, and their ``k`` nearest messages by vector. When
        ``keywords`` is this index (it holds the texts beside the vectors), one round trip reads both; otherwise it
        is ``lookup_apart``. ``owner`` (a user id; where ``checks_owner``): only the sessions bound to that user when
        read, the others read as empty (``Lookup.owned``)."""
        ...

    def lookup_user(
        self,
        user: UserRef,
        query: Callable[[], Vectors],
        k: int,
        keywords: KeywordIndex,
        *,
        limit: int,
        session_ids: frozenset[str] | None,
    ) -> UserLookup | None:
        """``lookup_many(..., owner=user.id)`` of the user's ``limit`` most recently written listed sessions (those
        among ``session_ids`` when given), the listing read in the same round trip; ``query`` is called before the
        read (what is read is what holds after the embedding). None, ``query`` not called, where it cannot be (a
        cluster, or ``keywords`` not this index): the caller lists the sessions first."""
        ...


class KeywordIndex(Protocol):
    """The keyword side of a session: its indexed messages in order, with their BM25 postings."""

    def texts(self, session: SessionRef) -> SessionTexts:
        """The session's indexed messages as of now (read incrementally; the caller must not change them)."""
        ...

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        """``texts`` of each session, read together (one round trip for what is new in all of them)."""
        ...


def lookup_apart(
    index: VectorIndex, keywords: KeywordIndex, sessions: Sequence[SessionRef], query: Vectors, k: int
) -> Lookup:
    """``VectorIndex.lookup_many`` from two separate reads: the texts from ``keywords``, the vectors from ``index``."""
    texts = keywords.texts_many(sessions)
    return Lookup(texts=texts, nearest=lambda: index.vector_search_many(sessions, query, k))
