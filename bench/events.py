"""The sample events of ``events/`` as the benchmarks use them: one copy of the loading and of the seeded session;
and where the repository is (``REPO``), with the ``PYTHONPATH`` the benchmarks' child processes run under."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
PYTHONPATH = f"{REPO / 'layers' / 'shared' / 'python'}:{REPO}"  # the layer, as /opt/python on Lambda, and the repo
WINDOW = 12  # MOTORHEAD_MAX_WINDOW_SIZE of the warm-path benchmarks
SEED_MESSAGES = 14  # the seeded session: more messages than the window, and a context


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def seed_event(session_id: str) -> dict[str, Any]:
    """The sample POST event with more messages than the window, and a context."""
    event = copy.deepcopy(load_event("post_memory-with-context"))
    payload = {
        "messages": [
            {"role": "Human" if i % 2 == 0 else "AI", "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 4}
            for i in range(SEED_MESSAGES)
        ],
        "context": "The user likes electronic music and asked about DJs from Colombia.",
    }
    raw = json.dumps(payload)
    event["pathParameters"] = {"session_id": session_id}
    event["body"] = raw
    event["headers"]["content-length"] = str(len(raw.encode()))
    return event
