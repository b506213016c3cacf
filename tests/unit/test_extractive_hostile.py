"""The offline summarizer on hostile input: sentence splitting stays exactly what it was on ordinary text, and folding
huge runs of spaces, stopwords, dots, one word, emoji or line breaks costs time linear in their length.

The former splitter (copied below as the reference) tried ``\\s*\\n\\s*`` from every space of a run, each attempt
scanning to the run's end: 60 KB of spaces took seconds, and 16 such messages outlived the summary job's Lambda
timeout on every retry."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.ports import TokenCounter
from motorhead.core.summarization.extractive import ExtractiveSummaryWriter, split_sentences
from motorhead.core.values import StoredMessage
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE

# --- the reference: the splitter as it was, quadratic on whitespace runs but correct --------------------------------
_REFERENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+|(?<=[。！？])|\s*\n\s*")


def reference_split_sentences(text: str) -> list[str]:
    return [sentence for part in _REFERENCE_BREAK.split(text) if (sentence := part.strip())]


# Pieces of text that exercise every branch of the splitter: words, terminals, closers after them, CJK terminals,
# every kind of whitespace (Unicode ones included: \s and str.strip agree on them, "\n" alone breaks lines).
WORD_PIECES = ["Ana", "lives", "in", "Lyon", "12", "März", "東京", "は", "日本", "😀", "x", "e.g", "U.S.A", "3.14"]
MARKS = [".", "!", "?", "…", "。", "！", "？", '"', "'", "”", "’", ")", "]", "(", "[", ",", ":", "-", "...", '."', ".)"]
SPACES = [" ", "  ", "\t", "\n", "\n\n", " \n ", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028"]
SPACES += ["\u3000", " \u3000\n\t"]
ALPHABET = "aZ9 \t\n\r\x0b\xa0\u3000\u2028.!?…。！？\"'”’)](東😀"

pieces = st.lists(st.sampled_from(WORD_PIECES + MARKS + SPACES), max_size=60).map("".join)
characters = st.text(alphabet=ALPHABET, max_size=80)
runs = st.lists(
    st.tuples(st.sampled_from(WORD_PIECES + MARKS + SPACES), st.integers(min_value=1, max_value=40)), max_size=8
).map(lambda items: "".join(piece * times for piece, times in items))


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(pieces, characters, runs, st.text(max_size=60)))
@example(text="Hi there!  How are you?\nFine.")
@example(text='He said "stop." Then he left. (Really.) [Yes!] Ok')
@example(text="東京は日本の首都です。人口は多い！本当？はい")
@example(text="。\n\n 次。  ")
@example(text="Wait…  what?\t\tNo.\u3000\u3000Yes.\u2028Maybe")
@example(text=".'\n'. \"")
def test_split_sentences_given_any_text_matches_the_former_regex_split(text: str) -> None:
    # Given any text built from words, terminals, quotes, brackets, CJK and whitespace runs
    # When it is split / Then the sentences are exactly those the former regex split gave
    assert split_sentences(text) == reference_split_sentences(text)


# --- hostile messages ------------------------------------------------------------------------------------------------
HOSTILE_UNITS = {
    "spaces": " ",
    "stopwords": "a ",
    "dots": ".",
    "one-word": "x",
    "emoji": "😀",  # 4 bytes in UTF-8
    "newlines": "\n",
    "tabs": "\t",
    "mixed-whitespace": " \t \u3000",
}
MESSAGE_BYTES = 60_000
MESSAGES = 16
FOLD_BOUND_SECONDS = 2.0  # all 16 messages; the former splitter took 195 s for 16 messages of spaces on this machine
SMALL_BYTES = 4_000  # the former splitter: 0.06 s for 4 KB of spaces, 0.6 s for 16 KB; the current one: ~0.1 ms


def hostile(unit: str, size_bytes: int) -> str:
    """``unit`` repeated to about ``size_bytes`` of UTF-8."""
    return unit * (size_bytes // len(unit.encode()))


def stored(contents: list[str]) -> list[StoredMessage]:
    return [
        StoredMessage(id=i + 1, role="Human", content=content, created_at=1_700_000_000_000 + i)
        for i, content in enumerate(contents)
    ]


@pytest.fixture(scope="module")
def writer() -> ExtractiveSummaryWriter:
    counter: TokenCounter = TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE)
    counter.count("load the encoding now, not inside a timed fold")
    return ExtractiveSummaryWriter(counter=counter, max_tokens=512)


def best_seconds(action: Callable[[], object], *, floor: float = 0.02) -> float:
    """The minimum of 3 timings of ``action`` (the least disturbed by other processes), each repeated until it lasts
    ``floor`` seconds so a fast action is still measured above the clock's and the scheduler's noise."""
    repeats = 1
    while True:
        start = time.perf_counter()
        for _ in range(repeats):
            action()
        if (elapsed := time.perf_counter() - start) >= floor:
            break
        repeats *= 2
    samples = [elapsed]
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(repeats):
            action()
        samples.append(time.perf_counter() - start)
    return min(samples) / repeats


def growth(small: Callable[[], object], large: Callable[[], object], *, rounds: int = 5) -> tuple[float, float]:
    """The best time of ``small`` and of ``large`` (``best_seconds``), measured in turn over several rounds, so that a
    burst of load from other processes slows both alike rather than one of them (a busy 2-core CI machine)."""
    smalls, larges = [], []
    for _ in range(rounds):
        smalls.append(best_seconds(small))
        larges.append(best_seconds(large))
    return min(smalls), min(larges)


@pytest.mark.parametrize("kind", list(HOSTILE_UNITS))
def test_fold_given_16_hostile_messages_of_60_kb_finishes_within_the_bound(
    writer: ExtractiveSummaryWriter, kind: str
) -> None:
    # Given 16 messages of 60 KB each of one hostile kind (each a little different, as real retries would not be)
    messages = stored([hostile(HOSTILE_UNITS[kind], MESSAGE_BYTES) + str(i) for i in range(MESSAGES)])

    # When they are folded together, as one summary job does
    seconds = best_seconds(lambda: writer.fold(None, messages), floor=0.0)

    # Then the job takes a fraction of its Lambda timeout, far from the seconds per message of a quadratic split
    assert seconds < FOLD_BOUND_SECONDS, f"{kind}: {seconds:.2f}s"


@pytest.mark.parametrize("kind", list(HOSTILE_UNITS))
def test_fold_given_a_hostile_previous_summary_of_60_kb_finishes_within_the_bound(
    writer: ExtractiveSummaryWriter, kind: str
) -> None:
    # Given a previous summary (a client may send one with the messages) of 60 KB of one hostile kind
    summary = hostile(HOSTILE_UNITS[kind], MESSAGE_BYTES)
    messages = stored(["Ana flies to Lyon on 12 March with her sister."])

    # When it is folded with a message / Then it is split and scored as quickly
    seconds = best_seconds(lambda: writer.fold(summary, messages), floor=0.0)
    assert seconds < FOLD_BOUND_SECONDS / MESSAGES, f"{kind}: {seconds:.3f}s"


@pytest.mark.parametrize("kind", list(HOSTILE_UNITS))
def test_fold_given_a_hostile_input_4_times_longer_takes_less_than_8_times_longer(
    writer: ExtractiveSummaryWriter, kind: str
) -> None:
    # Given 4 messages of 4 KB and 4 of 16 KB of one hostile kind (small enough for a quadratic split to fail the
    # assertion in seconds rather than the test's timeout)
    small = stored([hostile(HOSTILE_UNITS[kind], SMALL_BYTES) + str(i) for i in range(4)])
    large = stored([hostile(HOSTILE_UNITS[kind], 4 * SMALL_BYTES) + str(i) for i in range(4)])

    # When each is folded (best of 3, in turn over 5 rounds)
    small_seconds, large_seconds = growth(lambda: writer.fold(None, small), lambda: writer.fold(None, large))

    # Then 4 times the input costs about 4 times the time: a quadratic split would take 16 times
    assert large_seconds < 8 * small_seconds, f"{kind}: {small_seconds * 1e3:.2f} ms -> {large_seconds * 1e3:.2f} ms"


@pytest.mark.parametrize("kind", list(HOSTILE_UNITS))
def test_split_sentences_given_a_hostile_text_4_times_longer_takes_less_than_8_times_longer(kind: str) -> None:
    # Given 4 KB and 16 KB of one hostile kind
    small, large = hostile(HOSTILE_UNITS[kind], SMALL_BYTES), hostile(HOSTILE_UNITS[kind], 4 * SMALL_BYTES)

    # When each is split (best of 3, in turn over 5 rounds) / Then the time grows linearly, not quadratically
    small_seconds, large_seconds = growth(lambda: split_sentences(small), lambda: split_sentences(large))
    assert large_seconds < 8 * small_seconds, f"{kind}: {small_seconds * 1e3:.2f} ms -> {large_seconds * 1e3:.2f} ms"


@pytest.mark.parametrize(
    ("kind", "sentences"),
    [
        ("spaces", []),
        ("stopwords", [hostile("a ", MESSAGE_BYTES).strip()]),
        ("dots", [hostile(".", MESSAGE_BYTES)]),
        ("newlines", []),
        ("mixed-whitespace", []),
    ],
)
def test_split_sentences_given_a_hostile_text_returns_what_the_former_split_did(
    kind: str, sentences: list[str]
) -> None:
    # Given 60 KB of one hostile kind / When it is split / Then the answer is the same as before, only sooner
    assert split_sentences(hostile(HOSTILE_UNITS[kind], MESSAGE_BYTES)) == sentences
