"""Keyword relevance (Okapi BM25) over a session's indexed messages, on any Redis.

It reads the session's ``docs`` list (both vector backends append each indexed message to it), keeps an inverted
index per session in memory, and reads only the messages it has not seen yet on the next query.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from motorhead.keys import Keys
from motorhead.ports import StoredMessage
from motorhead.redis_client import RedisConnector
from motorhead.text import content_words

K1, B = 1.2, 0.75
MAX_CACHED_SESSIONS = 16

# KEYS: meta, docs. ARGV: row offset. The generation and the messages a cache has not seen, in one read.
# Marked when the list is shorter than the cache (a failover lost the last writes): the cache starts over then too.
_READ_FROM = """
local generation = redis.call('HGET', KEYS[1], 'gen') or ''
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[1]) then
  generation = generation .. '/shorter'
end
return {generation, redis.call('LRANGE', KEYS[2], ARGV[1], -1)}
"""


@dataclass
class _Postings:
    generation: str = ""
    messages: list[StoredMessage] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    postings: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # word -> [(row, term frequency)]

    def add(self, message: StoredMessage) -> None:
        row = len(self.messages)
        words = content_words(message.content)
        self.messages.append(message)
        self.lengths.append(len(words))
        for word, frequency in Counter(words).items():
            self.postings.setdefault(word, []).append((row, frequency))


class KeywordIndex:
    def __init__(self, connector: RedisConnector, keys: Keys) -> None:
        self._connector = connector
        self._keys = keys
        self._cache: OrderedDict[str, _Postings] = OrderedDict()
        self._lock = threading.Lock()

    def _read(self, session_id: str, offset: int) -> tuple[str, list[str]]:
        keys = self._keys.session(session_id)
        generation, docs = self._connector.run_script(_READ_FROM, (keys.meta, keys.docs), [offset])
        return str(generation), list(docs)

    def _postings(self, session_id: str) -> _Postings:
        with self._lock:
            cached = self._cache.pop(session_id, None) or _Postings()
        generation, docs = self._read(session_id, len(cached.messages))
        if generation != cached.generation:  # first read, re-created, or shorter: start over
            if cached.messages:  # what was read starts at our offset: read it all
                generation, docs = self._read(session_id, 0)
            cached = _Postings(generation=generation)
        for doc in docs:
            data = json.loads(doc)
            cached.add(
                StoredMessage(
                    id=int(data["id"]), role=data["role"], content=data["content"], created_at=int(data["created_at"])
                )
            )
        with self._lock:
            self._cache[session_id] = cached
            while len(self._cache) > MAX_CACHED_SESSIONS:
                self._cache.popitem(last=False)
        return cached

    def search(self, session_id: str, text: str, k: int) -> list[tuple[StoredMessage, float]]:
        """The ``k`` messages with the highest BM25 score for ``text``, best first; none when no word matches."""
        index = self._postings(session_id)
        count = len(index.messages)
        if count == 0:
            return []
        average = sum(index.lengths) / count or 1.0
        scores: dict[int, float] = {}
        for word in set(content_words(text)):
            postings = index.postings.get(word)
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for row, frequency in postings:
                norm = frequency + K1 * (1 - B + B * index.lengths[row] / average)
                scores[row] = scores.get(row, 0.0) + idf * frequency * (K1 + 1) / norm
        best = sorted(scores.items(), key=lambda item: (-item[1], -index.messages[item[0]].id))[:k]
        return [(index.messages[row], score) for row, score in best]
