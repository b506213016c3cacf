"""How a message is stored in Redis: one JSON object ``{"id", "role", "content", "created_at"}``, never a
``"role: content"`` string. The append script inserts the id, which only Redis knows, at the front of the object
``encode_new`` makes."""

from __future__ import annotations

import json

from motorhead.core.values import NewMessage, StoredMessage


def encode_new(message: NewMessage, *, created_at: int) -> str:
    """A message without its id (the append script adds ``"id":N,`` after the opening brace)."""
    return json.dumps({"role": message.role, "content": message.content, "created_at": created_at})


def encode(message: StoredMessage) -> str:
    return json.dumps(
        {"id": message.id, "role": message.role, "content": message.content, "created_at": message.created_at}
    )


def decode(raw: str | bytes) -> StoredMessage:
    data = json.loads(raw)
    return StoredMessage(
        id=int(data["id"]), role=data["role"], content=data["content"], created_at=int(data["created_at"])
    )
