"""Progressive summaries with an LLM: the current summary plus a batch of new lines gives the next summary.

Batches are sized with tiktoken for the configured model (its encoding and its context window, both overridable), so
the number of model calls grows with the tokens to fold, not with the number of messages.
"""

from __future__ import annotations

from collections.abc import Iterator

from motorhead.core.ports import ChatModel, TokenCounter
from motorhead.core.values import Folded, StoredMessage

SYSTEM_PROMPT = (
    "You maintain the running summary of a conversation between a user and an AI assistant. You receive the current "
    "summary and new lines of the conversation. Reply with the updated summary only, in plain prose, in the third "
    "person: keep every fact, preference, decision, name, date, number and open question that may matter later; "
    "merge the new lines into what is already there; drop greetings, filler and repetition; stay under {words} words. "
    "If the new lines add nothing worth remembering, reply with exactly NONE."
)

USER_PROMPT = "Current summary:\n{summary}\n\nNew lines of the conversation:\n{lines}\n\nUpdated summary:"

NO_SUMMARY = "(none yet)"

# Context windows of common models (input + output tokens); anything else gets a conservative 8k.
CONTEXT_TOKENS = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_000_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "gpt-5": 400_000,
}
DEFAULT_CONTEXT_TOKENS = 8_192
MAX_BATCH_TOKENS = 12_000  # a batch bigger than this buys little and makes each call slow and costly
SAFETY_TOKENS = 64
MIN_BATCH_TOKENS = 64  # chat-format overhead per call (role markers) and rounding


def context_tokens_for(model: str) -> int:
    """The longest known prefix wins: gpt-4o-mini → gpt-4o, gpt-4-0613 → gpt-4."""
    matches = [prefix for prefix in CONTEXT_TOKENS if model.startswith(prefix)]
    return CONTEXT_TOKENS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_TOKENS


def is_empty_answer(text: str) -> bool:
    """NONE, or nothing at all: keep the previous summary."""
    return text.strip().strip(".").strip().upper() in {"", "NONE"}


class LlmSummaryWriter:
    """Implements ``SummaryWriter`` with a ``ChatModel``."""

    def __init__(
        self,
        *,
        model: ChatModel,
        counter: TokenCounter,
        summary_max_tokens: int,
        context_tokens: int | None = None,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        self._model = model
        self._counter = counter
        self._summary_max_tokens = summary_max_tokens
        self._system = SYSTEM_PROMPT.format(words=max(20, summary_max_tokens * 3 // 4))
        window = context_tokens or context_tokens_for(counter.model)
        fixed = counter.count(self._system) + counter.count(USER_PROMPT) + SAFETY_TOKENS
        # room for the lines = window - prompts - the summary going in - the summary coming out
        self._line_budget = min(max_batch_tokens, window - fixed - 2 * summary_max_tokens)
        if self._line_budget < 256:
            raise ValueError(f"context window of {window} tokens leaves no room for lines to summarize")

    @property
    def line_budget(self) -> int:
        return self._line_budget

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded:
        summary = context
        tokens = calls = 0
        for batch in self.batches(messages, summary_tokens=self._counter.count(context or "")):
            answer = self._model.complete(
                system=self._system,
                user=USER_PROMPT.format(summary=summary or NO_SUMMARY, lines="\n".join(batch)),
                max_tokens=self._summary_max_tokens,
            )
            tokens += answer.total_tokens
            calls += 1
            if not is_empty_answer(answer.text):
                summary = answer.text.strip()
        return Folded(context=summary, tokens=tokens, calls=calls)

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        """The size of the first batch: one model call per commit, so a long backlog makes progress call by call."""
        first = next(self.batches(messages, summary_tokens=self._counter.count(context or "")), [])
        return max(1, len(first))

    def batches(self, messages: list[StoredMessage], *, summary_tokens: int = 0) -> Iterator[list[str]]:
        """Lines ``role: content`` grouped so each call fits; a line longer than a whole batch is cut to fit.

        A client-provided context may be longer than ``summary_max_tokens``: the first batch leaves room for it.
        """
        budget = max(MIN_BATCH_TOKENS, self._line_budget - max(0, summary_tokens - self._summary_max_tokens))
        batch: list[str] = []
        used = 0
        for message in messages:
            line = f"{message.role}: {message.content}"
            size = self._counter.count(line) + 1
            if batch and used + size > budget:
                yield batch
                batch, used = [], 0
                budget = self._line_budget
            if size > budget:
                line, size = self._counter.head(line, budget - 1), budget
            batch.append(line)
            used += size
        if batch:
            yield batch
