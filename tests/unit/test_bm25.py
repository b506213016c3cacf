"""BM25 over a session's messages, each read with the messages before it and its date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from motorhead.core.values import StoredMessage
from motorhead.ltm.bm25 import SessionTexts, corpus_scores, date_terms, light_stem, terms


def texts_of(*contents: str, context: int = 2, when: datetime | None = None) -> SessionTexts:
    created = int((when or datetime(2023, 5, 8, tzinfo=UTC)).timestamp() * 1000)
    texts = SessionTexts(context=context)
    for i, content in enumerate(contents, start=1):
        role = "Caroline" if i % 2 else "Melanie"
        texts.add(StoredMessage(id=i, role=role, content=content, created_at=created))
    return texts


@pytest.mark.parametrize(
    ("word", "stem"),
    [("classes", "class"), ("painted", "paint"), ("running", "run"), ("stories", "story"), ("quickly", "quick"),
     ("bus", "bus"), ("was", "was"), ("2022", "2022"), ("dishes", "dish"), ("analysis", "analysis")],
)  # fmt: skip
def test_light_stem_given_common_suffixes_strips_them_and_leaves_short_words_and_numbers(word: str, stem: str) -> None:
    assert light_stem(word) == stem


def test_terms_given_a_sentence_keeps_content_words_lowercased_and_stemmed() -> None:
    assert terms("The Painting classes ARE on Fridays") == ["paint", "class", "friday"]


def test_date_terms_given_a_timestamp_names_its_day_month_and_year_in_utc() -> None:
    assert date_terms(int(datetime(2022, 1, 21, 23, 59, tzinfo=UTC).timestamp() * 1000)) == ["21", "january", "2022"]


def test_scores_given_an_answer_without_the_question_words_finds_it_through_the_turns_before() -> None:
    # Given a question asked in one turn and answered in the next, in words that share nothing with the question
    texts = texts_of("When did you go to the support group?", "Yes, last Tuesday.", "I love hiking.")
    # When searching with the question's words
    scores = texts.scores("support group")
    # Then the answer scores (its document holds the turn before), and the unrelated turn after it too, less
    assert scores[0] > 0 and scores[1] > 0 and scores[2] > 0
    assert scores[0] > scores[2]
    # And with no context, only the question's own turn matches
    alone = texts_of("When did you go to the support group?", "Yes, last Tuesday.", "I love hiking.", context=0)
    assert alone.scores("support group").tolist()[1:] == [0.0, 0.0]


def test_scores_given_a_question_naming_the_date_matches_the_messages_of_that_day() -> None:
    may = texts_of("We painted a sunrise.", when=datetime(2023, 5, 8, tzinfo=UTC))
    june = texts_of("We painted a sunrise.", when=datetime(2022, 6, 9, tzinfo=UTC))
    assert may.scores("what happened on 8 May 2023")[0] > 0
    assert june.scores("what happened on 8 May 2023")[0] == 0


def test_search_given_no_common_word_returns_nothing_and_ties_newer_first() -> None:
    texts = texts_of("apples", "pears", "apples", context=0)
    assert texts.search("bananas", 10) == []
    assert [m.id for m, _ in texts.search("apples", 10)] == [3, 1]


def test_scores_given_messages_added_later_equal_a_fresh_build() -> None:
    # Given the same messages added in two steps (as the incremental cache does) and in one
    contents = [f"message {i} about topic {i % 7}" for i in range(40)]
    grown = texts_of(*contents[:25])
    grown.scores("topic 3")  # caches the document lengths
    for i, content in enumerate(contents[25:], start=26):
        grown.add(StoredMessage(id=i, role="Caroline" if i % 2 else "Melanie", content=content,
                                created_at=grown.messages[0].created_at))  # fmt: skip
    # Then both score every query the same
    fresh = texts_of(*contents)
    for query in ("topic 3", "message 30", "Caroline topic"):
        assert grown.scores(query) == pytest.approx(fresh.scores(query))


def test_corpus_scores_given_texts_grown_or_another_corpus_scores_as_texts_read_anew() -> None:
    # Given a session scored once alone (its length norms kept), then grown, then scored in a user's corpus
    grown = texts_of("I painted a sunrise", "Nice, when?", "Last week, by the lake")
    other = texts_of("The lake was calm", "We went painting at the lake")
    grown.scores("lake painting")
    grown.add(StoredMessage(id=4, role="Melanie", content="A lake at sunrise!", created_at=1_683_504_000_000))
    fresh = texts_of("I painted a sunrise", "Nice, when?", "Last week, by the lake")
    fresh.add(StoredMessage(id=4, role="Melanie", content="A lake at sunrise!", created_at=1_683_504_000_000))
    # When scored alone, and with the other session as one corpus (another average length)
    # Then every score is the one of texts never scored before
    assert grown.scores("lake painting").tolist() == fresh.scores("lake painting").tolist()
    together = [part.tolist() for part in corpus_scores([grown, other], "lake painting")]
    anew = corpus_scores([fresh, texts_of("The lake was calm", "We went painting at the lake")], "lake painting")
    assert together == [part.tolist() for part in anew]
    assert grown.scores("lake painting").tolist() == fresh.scores("lake painting").tolist()
