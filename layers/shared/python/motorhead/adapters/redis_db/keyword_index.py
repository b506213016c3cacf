"""Keyword relevance (Okapi BM25) over a session's indexed messages, on any Redis.

It reads the session's ``docs`` list (both vector backends append each indexed message to it) through the
incremental ``SessionRowCache``, so a query reads only the messages this process has not seen yet.
"""

from __future__ import annotations

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.session_cache import SessionRowCache
from motorhead.core.values import SessionRef, StoredMessage
from motorhead.ltm.bm25 import Bm25Postings


def _extend(postings: Bm25Postings, messages: list[StoredMessage], _vectors: bytes) -> None:
    for message in messages:
        postings.add(message)


class RedisKeywordIndex:
    """Implements ``motorhead.ltm.ports.KeywordIndex``."""

    def __init__(self, connector: RedisConnector, keys: Keys) -> None:
        self._postings: SessionRowCache[Bm25Postings] = SessionRowCache(
            connector, keys, new=Bm25Postings, extend=_extend
        )

    def search(self, session: SessionRef, text: str, k: int) -> list[tuple[StoredMessage, float]]:
        return self._postings.get(session).search(text, k)
