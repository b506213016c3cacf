"""What the retrieval function serves when MOTORHEAD_LONG_TERM_MEMORY is off (imports no numpy)."""

from __future__ import annotations

from motorhead.core.values import Hit, SessionRef
from motorhead.errors import LongTermMemoryDisabledError


class DisabledRetrieval:
    def retrieve(self, session: SessionRef, text: str, k: int) -> list[Hit]:
        raise LongTermMemoryDisabledError("long-term memory is disabled (set MOTORHEAD_LONG_TERM_MEMORY=true)")
