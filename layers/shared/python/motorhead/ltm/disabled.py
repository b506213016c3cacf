"""What the retrieval function serves when MOTORHEAD_LONG_TERM_MEMORY is off (imports no numpy)."""

from __future__ import annotations

from motorhead.core.values import Hit, SearchFilters, SessionRef, UserHit, UserRef
from motorhead.errors import LongTermMemoryDisabledError

DISABLED = "long-term memory is disabled (set MOTORHEAD_LONG_TERM_MEMORY=true)"


class DisabledRetrieval:
    def retrieve(self, session: SessionRef, text: str, k: int, *, explain: bool = False) -> list[Hit]:
        raise LongTermMemoryDisabledError(DISABLED)

    def retrieve_user(
        self, user: UserRef, text: str, k: int, filters: SearchFilters | None = None, *, explain: bool = False
    ) -> list[UserHit]:
        raise LongTermMemoryDisabledError(DISABLED)
