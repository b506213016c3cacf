"""The offline summarizer keeps facts, drops filler, never exceeds its budget, and gives the same answer every time."""

from __future__ import annotations

import pytest

from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.ports import TokenCounter
from motorhead.core.summarization.extractive import ExtractiveSummaryWriter, split_sentences
from motorhead.core.values import StoredMessage
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE

TRAVEL = [
    ("Human", "Hi there!"),
    ("AI", "Hello! How can I help you today?"),
    (
        "Human",
        "I am flying to Bogotá on 12 March with my sister Ana. We need a hotel near La Candelaria for five nights.",
    ),
    ("AI", "Sure! Hotel de la Opera in La Candelaria has rooms from 95 USD per night."),
    ("Human", "Ok thanks."),
    ("Human", "Ana is vegetarian and allergic to peanuts."),
    ("AI", "Noted."),
    ("Human", "Can you also find a day trip to the Zipaquirá salt cathedral on 14 March?"),
    ("AI", "A guided tour leaves at 8:00 from the hotel and costs 60 USD per person."),
    ("Human", "Perfect, thank you! Bye!"),
]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE)


def messages(pairs: list[tuple[str, str]], *, first_id: int = 1) -> list[StoredMessage]:
    return [
        StoredMessage(id=first_id + i, role=role, content=content, created_at=1_700_000_000_000 + i)
        for i, (role, content) in enumerate(pairs)
    ]


def filler(count: int, *, first_id: int = 1) -> list[StoredMessage]:
    """``count`` distinct, wordy messages (40 words each) that all qualify as content."""
    return messages(
        [
            (
                "Human" if i % 2 else "AI",
                f"Shipment {i} of crate batch {i * 7} leaves warehouse {i % 13} carrying {i * 3} boxes of lamps. "
                f"Driver number {i} reports traffic delays near junction {i % 17} on motorway {i % 5}. "
                f"Customer ticket {i * 11} mentions scratched glass panels, replacement order {i * 13} pending.",
            )
            for i in range(count)
        ],
        first_id=first_id,
    )


def test_fold_given_travel_chat_keeps_facts_and_drops_greetings(counter: TokenCounter) -> None:
    # Given a travel conversation full of greetings around a few facts
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    # When it is folded with no previous summary
    folded = writer.fold(None, messages(TRAVEL))
    # Then names, places and numbers survive, as `role: sentence` lines, and the filler is gone
    assert folded.context is not None
    lines = folded.context.split("\n")
    assert "Human: I am flying to Bogotá on 12 March with my sister Ana." in lines
    assert "Human: Ana is vegetarian and allergic to peanuts." in lines
    assert "AI: A guided tour leaves at 8:00 from the hotel and costs 60 USD per person." in lines
    for greeting in ("Hi there", "Hello", "Ok thanks", "Noted", "Bye", "Sure!"):
        assert greeting not in folded.context
    # And nothing was billed
    assert (folded.tokens, folded.calls) == (0, 0)


def test_fold_given_travel_chat_outputs_lines_in_chronological_order(counter: TokenCounter) -> None:
    # Given a budget that keeps only some sentences
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=60)
    # When the conversation is folded
    folded = writer.fold(None, messages(TRAVEL))
    # Then the kept lines appear in the order they were said
    assert folded.context is not None
    lines = folded.context.split("\n")
    said = [f"{role}: {s}" for role, content in TRAVEL for s in split_sentences(content)]
    assert [said.index(line) for line in lines] == sorted(said.index(line) for line in lines)
    assert counter.count(folded.context) <= 60


@pytest.mark.parametrize("max_tokens", [1, 5, 16, 64, 512])
def test_fold_given_huge_backlog_never_exceeds_max_tokens(counter: TokenCounter, max_tokens: int) -> None:
    # Given a previous summary and 1,000 wordy messages, far more than the budget
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=max_tokens)
    previous = writer.fold(None, filler(50)).context
    # When they are folded
    folded = writer.fold(previous, filler(1_000, first_id=100))
    # Then the summary fits the budget
    assert folded.context is None or counter.count(folded.context) <= max_tokens


@pytest.mark.parametrize("max_tokens", [8, 32, 200])
def test_fold_given_one_huge_message_truncates_it_to_the_budget(counter: TokenCounter, max_tokens: int) -> None:
    # Given a single sentence of thousands of tokens, with no punctuation to split it
    huge = " ".join(f"Paragraph {i} cites clause {i * 3} of contract Alpha" for i in range(800))
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=max_tokens)
    # When it is folded
    folded = writer.fold(None, messages([("Human", huge)]))
    # Then its beginning is kept, cut to the budget, marked "…" when there was room for it
    assert folded.context is not None
    assert folded.context.startswith("Human: Paragraph 0 cites")
    assert "\n" not in folded.context
    assert folded.context.endswith("…")
    assert counter.count(folded.context) <= max_tokens


def test_fold_given_room_keeps_earlier_facts_across_incremental_folds(counter: TokenCounter) -> None:
    # Given a summary of the first half of the conversation
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    first = writer.fold(None, messages(TRAVEL[:5]))
    # When the second half is folded into it
    second = writer.fold(first.context, messages(TRAVEL[5:], first_id=6))
    # Then facts from both halves are there, and the result equals folding everything at once
    assert second.context is not None
    assert "Human: I am flying to Bogotá on 12 March with my sister Ana." in second.context
    assert "AI: A guided tour leaves at 8:00 from the hotel and costs 60 USD per person." in second.context
    assert second.context == writer.fold(None, messages(TRAVEL)).context


def test_fold_given_repeated_sentences_keeps_one(counter: TokenCounter) -> None:
    # Given a fact already in the summary, repeated verbatim and nearly verbatim in new messages
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    previous = "Human: My flight to Bogotá lands at 6 pm on 12 March."
    repeats = messages(
        [
            ("Human", "My flight to Bogotá lands at 6 pm on 12 March."),
            ("AI", "Your flight to Bogotá lands at 6 pm on 12 March."),
            ("Human", "My flight to Bogotá lands at 6 pm on 12 March!"),
            ("Human", "The hotel shuttle waits at Terminal 2 of El Dorado airport."),
        ]
    )
    # When they are folded
    folded = writer.fold(previous, repeats)
    # Then the fact appears once (the summary's own line) and the new fact is added
    assert folded.context == previous + "\nHuman: The hotel shuttle waits at Terminal 2 of El Dorado airport."


@pytest.mark.parametrize("previous", [None, "Human: I am flying to Bogotá on 12 March with my sister Ana."])
@pytest.mark.parametrize(
    "pairs", [[], [("Human", "Hi!"), ("AI", "Hello, how are you?"), ("Human", "Ok thanks, bye."), ("AI", "")]]
)
def test_fold_given_nothing_worth_keeping_keeps_previous_context(
    counter: TokenCounter, previous: str | None, pairs: list[tuple[str, str]]
) -> None:
    # Given no messages, or only greetings and empty ones
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    # When they are folded
    folded = writer.fold(previous, messages(pairs))
    # Then the previous summary is returned as it was (None stays None)
    assert folded.context == previous
    assert (folded.tokens, folded.calls) == (0, 0)


def test_fold_given_same_input_twice_returns_same_output(counter: TokenCounter) -> None:
    # Given two writers and a large input with many near-equal scores
    backlog = filler(300)
    first = ExtractiveSummaryWriter(counter=counter, max_tokens=256)
    second = ExtractiveSummaryWriter(counter=counter, max_tokens=256)
    # When each folds it
    # Then the summaries are identical
    assert first.fold("Human: Crates go to Lisbon.", backlog) == second.fold("Human: Crates go to Lisbon.", backlog)


def test_fold_given_free_prose_context_keeps_its_sentences(counter: TokenCounter) -> None:
    # Given a summary written by a client as a paragraph of prose
    prose = (
        "The user is planning a trip to Colombia in March. She travels with her sister Ana, who is vegetarian. "
        "They prefer small hotels in historic districts!"
    )
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    # When a new message is folded into it
    folded = writer.fold(prose, messages([("Human", "We land in Bogotá at 6 pm on 12 March.")]))
    # Then each prose sentence becomes a line of its own, without a role, followed by the new line
    assert folded.context == (
        "The user is planning a trip to Colombia in March.\n"
        "She travels with her sister Ana, who is vegetarian.\n"
        "They prefer small hotels in historic districts!\n"
        "Human: We land in Bogotá at 6 pm on 12 March."
    )


def test_fold_given_unicode_text_keeps_it_intact(counter: TokenCounter) -> None:
    # Given messages in Spanish, Russian, Greek and Japanese, with emoji
    pairs = [
        ("Human", "Reservé una habitación en Medellín para el 3 de abril. ¡Gracias!"),
        ("AI", "Встреча с Натальей перенесена на пятницу в Москве."),
        ("Human", "Το πλοίο για τη Σαντορίνη φεύγει στις 7 το πρωί 🚢."),
        ("AI", "東京駅で午後三時に待ち合わせです。よろしく！"),
    ]
    writer = ExtractiveSummaryWriter(counter=counter, max_tokens=512)
    # When they are folded
    folded = writer.fold(None, messages(pairs))
    # Then every informative sentence survives byte for byte, and the one-word courtesies do not
    assert folded.context == (
        "Human: Reservé una habitación en Medellín para el 3 de abril.\n"
        "AI: Встреча с Натальей перенесена на пятницу в Москве.\n"
        "Human: Το πλοίο για τη Σαντορίνη φεύγει στις 7 το πρωί 🚢.\n"
        "AI: 東京駅で午後三時に待ち合わせです。"
    )


def test_writer_given_non_positive_budget_refuses(counter: TokenCounter) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ExtractiveSummaryWriter(counter=counter, max_tokens=0)
