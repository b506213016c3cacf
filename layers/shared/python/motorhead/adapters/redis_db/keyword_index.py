"""The keyword side of long-term memory (BM25, ``ltm/bm25.py``) on any Redis.

It reads the session's ``docs`` list (both vector backends append each indexed message to it) through the
incremental ``SessionRowCache``, so a query reads only the messages this process has not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.client import Pipeline

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.session_cache import SessionRowCache
from motorhead.core.values import SessionRef, StoredMessage, UserRef
from motorhead.ltm.bm25 import SessionTexts


def _extend(texts: SessionTexts, messages: list[StoredMessage], _vectors: bytes) -> None:
    for message in messages:
        texts.add(message)


class RedisKeywordIndex:
    """Implements ``motorhead.ltm.ports.KeywordIndex``."""

    def __init__(
        self, connector: RedisConnector, keys: Keys, *, new: Callable[[], SessionTexts] = SessionTexts
    ) -> None:
        """``new`` makes a session's empty texts: the recipe's keyword documents by default (``ltm/bm25.py``)."""
        self._texts: SessionRowCache[SessionTexts] = SessionRowCache(connector, keys, new=new, extend=_extend)
        self.empty = new  # a session's texts before any message (what a session read as not the user's holds)

    def texts(self, session: SessionRef) -> SessionTexts:
        return self._texts.get(session)

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        return self._texts.get_many(sessions)

    def held(self, session: SessionRef) -> SessionTexts | None:
        """The session's texts as this process last read them, without asking Redis (None when not held)."""
        return self._texts.held(session)

    def texts_listed(
        self, user: UserRef, *, limit: int, session_ids: frozenset[str] | None = None
    ) -> list[tuple[SessionRef, SessionTexts | None, str]]:
        """The user's listed sessions with their texts (None: not bound to the user when read) and the generation
        read with them, the listing read in the same step (``SessionRowCache.get_listed``; a server without slots)."""
        return self._texts.get_listed(user, limit=limit, session_ids=session_ids)

    def texts_listed_beside(
        self,
        user: UserRef,
        beside: Callable[[Pipeline], object],
        *,
        limit: int,
        session_ids: frozenset[str] | None = None,
    ) -> tuple[list[tuple[SessionRef, SessionTexts | None, str]], list[Any]]:
        """``texts_listed``, its first read in one pipeline with the commands ``beside`` queues: their replies too."""
        return self._texts.get_listed_beside(user, limit=limit, session_ids=session_ids, beside=beside)

    def known_listed(self, user: UserRef) -> dict[str, int]:
        """The tags of the sessions last read through the user's listing in this process, with the rows held."""
        return self._texts.known_listed(user)

    def texts_beside(
        self, sessions: Sequence[SessionRef], beside: Callable[[Pipeline], object]
    ) -> tuple[list[SessionTexts], list[Any]]:
        """``texts_many``, read in one pipeline with the commands ``beside`` queues (a server without slots)."""
        return self._texts.get_many_beside(sessions, beside)
