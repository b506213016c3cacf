"""The retrieval recipe: what is embedded, what is keyword-indexed, and how the two rankings become one.

Chosen on the LoCoMo development conversations (``bench/retrieval.py``; README, "Retrieval"):

- **dense**: each message embedded as ``role: content`` (the speaker's name is part of what a question asks about);
  the message alone, no neighbour (adding the previous turn to the vector measured worse);
- **keyword**: BM25 over the message, its date and the 2 messages before it (``ltm/bm25.py``);
- **fusion by score, not by rank**: ``alpha · z(cosine) + (1 − alpha) · z(BM25)``, the z-scores taken over the
  candidates (the top ``candidates`` of each ranking); then ``+ speaker_boost`` for the messages of the one speaker
  the question names, if it names exactly one; then each message gets ``next_weight`` × its next message's score
  (an answer is often the turn after the one that matches).

The index's record (``adapters/redis_db/index_record.py``) names the dense text its vectors are made of, for the
whole index. An index built before this recipe has none: its messages were embedded as their content alone
(``DenseText.CONTENT``), so they go on being embedded that way and its vectors are never a mix; the keyword side and
the fusion, computed at query time, apply to it at once. A new index (a new key prefix) gets
``DenseText.ROLE_AND_CONTENT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from motorhead.core.values import StoredMessage


class DenseText(StrEnum):
    """What an index's vectors are made from; recorded once per index, beside its embedder."""

    CONTENT = "content"  # before this recipe: the message's content alone
    ROLE_AND_CONTENT = "role-content"  # "role: content"


CURRENT_DENSE_TEXT = DenseText.ROLE_AND_CONTENT


def dense_text(message: StoredMessage, form: DenseText) -> str:
    return message.content if form is DenseText.CONTENT else f"{message.role}: {message.content}"


@dataclass(frozen=True, slots=True)
class FusionRecipe:
    alpha: float = 0.6  # weight of the vectors' z-score against BM25's
    candidates: int = 100  # how many of each ranking are fused (the z-scores are taken over them)
    speaker_boost: float = 0.5  # added for the messages of the one speaker a question names
    next_weight: float = 0.2  # share of the next message's score added to each message's


DEFAULT_RECIPE = FusionRecipe()
