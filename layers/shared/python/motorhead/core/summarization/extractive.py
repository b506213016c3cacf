"""The offline default summarizer: an extractive digest of the summary plus the new messages, within a token budget.

``ExtractiveSummaryWriter`` needs no network, no model and no key. It splits the previous summary and the new messages
into sentences, scores each by how rare and specific its words are (tf-idf style, with a bonus for numbers and names),
drops greetings and filler, skips near-duplicates, and keeps the best sentences that fit in ``max_tokens``, printed in
chronological order as ``role: sentence`` lines. What it is good for: a bounded, faithful, keyword-rich digest: every
line is a sentence someone actually wrote (no hallucination, no paraphrase), it costs nothing, and it is deterministic.
What it is not: a real abstract; it does not merge facts, resolve pronouns or notice that a later sentence contradicts
an earlier one. Configure an LLM summarizer for that.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from motorhead.core.ports import TokenCounter
from motorhead.core.text import STOPWORDS, WORDS, content_words
from motorhead.core.values import Folded, StoredMessage

MIN_CONTENT_WORDS = 3  # fewer and the sentence is a greeting or filler: "ok thanks", "sure!", "hi there"
SPECIFIC_BONUS = 1.25  # numbers, dates, names and places are what a summary must not lose
STABILITY_BONUS = 1.1  # lines already in the summary stay unless something clearly better comes, so it does not churn
DUPLICATE_JACCARD = 0.7  # this much word overlap with a kept sentence and a candidate says nothing new
ELLIPSIS = "…"

_DIGIT = re.compile(r"\d")
# After . ! ? … (possibly closed by a quote or bracket) and whitespace, after 。！？, and at every line break. The line
# break alternative starts only where a whitespace run starts ((?<!\s)), and [^\S\n]* stops at the run's first newline:
# each run is scanned once, so splitting is linear in the text. (The former \s*\n\s* was tried again from every space
# of a run, each try scanning to the run's end and backtracking: quadratic, 6 s for 60 KB of spaces.)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+|(?<=[。！？])|(?<!\s)[^\S\n]*\n\s*")
# The ``role: `` a line of a summary we wrote starts with.
_ROLE_PREFIX = re.compile(r"^[^\W\d_][\w-]{0,31}: ")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, stripped, without empty ones; never containing a line break.

    Linear in ``len(text)`` whatever it holds: at a position inside a whitespace run every alternative of
    ``_SENTENCE_BREAK`` fails on its first check, and a run's start scans it once. The breaks are the former ones: a
    run holding a newline is one whole match either way (the former pattern also matched it from its start), and a
    run without one never matched (the tests compare both on generated text)."""
    return [sentence for part in _SENTENCE_BREAK.split(text) if (sentence := part.strip())]


def is_specific(text: str) -> bool:
    """Whether ``text`` has a digit or a capitalised content word after its first word (a name, place or date)."""
    if _DIGIT.search(text):
        return True
    return any(word[0].isupper() and word.lower() not in STOPWORDS for word in WORDS.findall(text)[1:])


@dataclass(slots=True)
class _Candidate:
    order: int
    prefix: str  # "role: ", printed but not scored
    text: str
    words: dict[str, None]  # unique content words, in order of appearance (deterministic sums)
    size: int  # content words, repeats included
    from_summary: bool
    score: float = 0.0

    @property
    def line(self) -> str:
        return self.prefix + self.text


class ExtractiveSummaryWriter:
    """Implements ``SummaryWriter`` without a model: keeps the most informative sentences that fit ``max_tokens``."""

    def __init__(self, *, counter: TokenCounter, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self._counter = counter
        self._max_tokens = max_tokens

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        """Everything at once: folding is local and fast (about 60 µs a message)."""
        return len(messages)

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded:
        """The new summary; the previous one, unchanged, when the messages hold no sentence worth keeping."""
        summary = self._summary_candidates(context or "")
        news = self._message_candidates(messages, start=len(summary))
        if not news:
            return Folded(context=context, tokens=0, calls=0)
        candidates = summary + news
        _score(candidates)
        kept = self._select(candidates)
        if not kept:
            return Folded(context=context, tokens=0, calls=0)
        return Folded(context="\n".join(c.line for c in kept), tokens=0, calls=0)

    @staticmethod
    def _summary_candidates(context: str) -> list[_Candidate]:
        """Our own summary has one ``role: sentence`` per line; a client's may be prose: its sentences, as written."""
        candidates: list[_Candidate] = []
        for sentence in split_sentences(context):
            match = _ROLE_PREFIX.match(sentence)
            prefix = match.group(0) if match else ""
            candidate = _candidate(len(candidates), prefix, sentence[len(prefix) :], from_summary=True)
            if candidate is not None:
                candidates.append(candidate)
        return candidates

    @staticmethod
    def _message_candidates(messages: list[StoredMessage], *, start: int) -> list[_Candidate]:
        candidates: list[_Candidate] = []
        for message in sorted(messages, key=lambda m: m.id):
            prefix = f"{message.role}: " if message.role else ""
            for sentence in split_sentences(message.content):
                candidate = _candidate(start + len(candidates), prefix, sentence, from_summary=False)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates

    def _select(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """Greedy by score (earlier first on ties), skipping near-duplicates and what does not fit; chronological."""
        kept: list[_Candidate] = []
        postings: dict[str, list[int]] = {}  # content word -> indexes in ``kept``, for the duplicate check
        used = 0  # tokens of the kept lines joined by newlines (an estimate, checked at the end)
        for candidate in sorted(candidates, key=lambda c: (-c.score, c.order)):
            room = self._max_tokens - used - (1 if kept else 0)
            if room < 1:
                break
            if _duplicates(candidate, kept, postings):
                continue
            size = self._counter.count(candidate.line)
            if size > room:
                if size <= self._max_tokens or not self._truncate(candidate, room):
                    continue
                size = self._counter.count(candidate.line)
            for word in candidate.words:
                postings.setdefault(word, []).append(len(kept))
            kept.append(candidate)
            used += size + (1 if len(kept) > 1 else 0)
        kept.sort(key=lambda c: c.order)
        # BPE may tokenize a join differently from its parts: drop the weakest lines until the real count fits.
        while kept and self._counter.count("\n".join(c.line for c in kept)) > self._max_tokens:
            kept.remove(min(kept, key=lambda c: (c.score, -c.order)))
        return kept

    def _truncate(self, candidate: _Candidate, room: int) -> bool:
        """Cut a sentence longer than the whole budget to ``room`` tokens, ending in "…" when that still fits; False
        when what is left is no longer worth keeping."""
        for keep, mark in ((room - 1, ELLIPSIS), (room, "")):
            head = self._counter.head(candidate.line, max(keep, 0)).rstrip()
            if not head.startswith(candidate.prefix) or self._counter.count(head + mark) > room:
                continue
            text = head[len(candidate.prefix) :]
            words = dict.fromkeys(content_words(text))
            if len(words) >= MIN_CONTENT_WORDS:
                candidate.text, candidate.words = text + mark, words
                return True
        return False


def _candidate(order: int, prefix: str, text: str, *, from_summary: bool) -> _Candidate | None:
    words = content_words(text)
    unique = dict.fromkeys(words)
    if len(unique) < MIN_CONTENT_WORDS:
        return None
    return _Candidate(order, prefix, text, unique, len(words), from_summary)


def _score(candidates: list[_Candidate]) -> None:
    """Sum of the idf of a sentence's distinct content words over the square root of its length, with bonuses."""
    total = len(candidates)
    df = Counter(word for c in candidates for word in c.words)
    idf = {word: math.log(1 + total / count) for word, count in df.items()}
    for c in candidates:
        score = sum(idf[word] for word in c.words) / math.sqrt(c.size)
        if is_specific(c.text):
            score *= SPECIFIC_BONUS
        if c.from_summary:
            score *= STABILITY_BONUS
        c.score = score


def _duplicates(candidate: _Candidate, kept: list[_Candidate], postings: dict[str, list[int]]) -> bool:
    """Whether ``candidate`` shares at least ``DUPLICATE_JACCARD`` of its words with a kept sentence."""
    shared = Counter(index for word in candidate.words for index in postings.get(word, ()))
    size = len(candidate.words)
    return any(
        common / (size + len(kept[index].words) - common) >= DUPLICATE_JACCARD for index, common in shared.items()
    )
