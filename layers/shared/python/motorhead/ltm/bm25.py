"""Okapi BM25 over one session's messages, in memory: the postings grow message by message as they are read."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from motorhead.core.text import content_words
from motorhead.core.values import StoredMessage

K1, B = 1.2, 0.75


@dataclass
class Bm25Postings:
    """The inverted index of one session's messages, in the order they were indexed."""

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

    def search(self, text: str, k: int) -> list[tuple[StoredMessage, float]]:
        """The ``k`` messages with the highest BM25 score for ``text``, best first (newest first on ties); none when
        no word matches."""
        count = len(self.messages)
        if count == 0:
            return []
        average = sum(self.lengths) / count or 1.0
        scores: dict[int, float] = {}
        for word in set(content_words(text)):
            postings = self.postings.get(word)
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for row, frequency in postings:
                norm = frequency + K1 * (1 - B + B * self.lengths[row] / average)
                scores[row] = scores.get(row, 0.0) + idf * frequency * (K1 + 1) / norm
        best = sorted(scores.items(), key=lambda item: (-item[1], -self.messages[item[0]].id))[:k]
        return [(self.messages[row], score) for row, score in best]
