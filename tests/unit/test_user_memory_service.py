"""User-level memory on in-memory fakes: binding, listing, forgetting (MemoryService), and one search over a user's
sessions with the session recipe (RetrievalService)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from motorhead.core.memory import MemoryService
from motorhead.core.values import MemoryLimits, NewMessage, SearchFilters, SessionJob, UserRef
from motorhead.errors import ConflictError, InvalidInputError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import KeywordIndex, Lookup, UserLookup, Vectors
from motorhead.ltm.retrieval import RetrievalService
from tests.fakes import FakeEmbedder, FakeMemoryStore, FakeVectorIndex
from tests.support import ref

LIMITS = MemoryLimits(max_session_id_bytes=8)
ANA = UserRef("acme", "ana")


def say(*contents: str) -> list[NewMessage]:
    return [NewMessage(role="Human", content=content) for content in contents]


def test_add_memory_given_another_user_refuses_and_stores_nothing() -> None:
    store = FakeMemoryStore()
    memory = MemoryService(store=store, limits=LIMITS)
    memory.add_memory(ref("s", "acme"), say("hi"), user_id="ana")
    memory.add_memory(ref("s", "acme"), say("again"))  # no user: fine
    with pytest.raises(ConflictError):
        memory.add_memory(ref("s", "acme"), say("planted"), user_id="bruno")
    assert [m.content for m in store.read(ref("s", "acme"), limit=10).messages] == ["again", "hi"]
    assert memory.list_sessions("acme", page=1, size=10, user_id="ana").session_ids == ["s"]
    assert memory.list_sessions("acme", page=1, size=10, user_id="bruno").session_ids == []


@pytest.mark.parametrize("user_id", ["", "u" * 9, "é" * 5])
def test_user_ids_given_out_of_the_session_id_rules_are_invalid_input(user_id: str) -> None:
    store = FakeMemoryStore()
    memory = MemoryService(store=store, limits=LIMITS)
    with pytest.raises(InvalidInputError, match="user id"):
        memory.add_memory(ref("s", "acme"), say("hi"), user_id=user_id)
    with pytest.raises(InvalidInputError, match="user id"):
        memory.delete_user(UserRef("acme", user_id))
    assert store.sessions == {}


def test_delete_user_given_sessions_of_two_users_forgets_one_only() -> None:
    store = FakeMemoryStore()
    memory = MemoryService(store=store, limits=LIMITS)
    for sid, user in (("a1", "ana"), ("a2", "ana"), ("b1", "bruno")):
        memory.add_memory(ref(sid, "acme"), say(sid), user_id=user)
    assert memory.delete_user(ANA) == (2, True)
    assert memory.delete_user(ANA) == (0, True)
    assert set(store.sessions) == {ref("b1", "acme")}


def test_retrieve_user_given_sessions_of_two_users_ranks_the_users_history_only() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    indexer = IndexerService(store=store, embedder=embedder, index=index)
    turns = {("w1", "ana"): "allergic to peanuts", ("w2", "ana"): "dinner on saturday", ("b", "bruno"): "peanuts"}
    for (sid, user), text in turns.items():
        store.append(ref(sid, "acme"), say(text), context=None, namespace="", now_ms=1, index=True, user_id=user)
        indexer.run(SessionJob(session=ref(sid, "acme"), last_id=1))
    service = RetrievalService(embedder=embedder, index=index, keywords=index, users=store)
    found = service.retrieve_user(ANA, "peanuts allergy", 10)
    assert [(hit.session_id, hit.hit.message.content) for hit in found][0] == ("w1", "allergic to peanuts")
    assert {hit.session_id for hit in found} == {"w1", "w2"}
    only = service.retrieve_user(ANA, "peanuts", 10, SearchFilters(session_ids=frozenset({"w2", "b"})))
    assert [hit.session_id for hit in only] == ["w2"]
    assert service.retrieve_user(UserRef("acme", "nobody"), "peanuts", 10) == []
    assert service.retrieve_user(ANA, "peanuts", 10, SearchFilters(roles=frozenset({"AI"}))) == []


def test_is_users_given_a_user_of_many_sessions_knows_each_of_them() -> None:
    store = FakeMemoryStore()
    memory = MemoryService(store=store, limits=LIMITS)
    for n in range(5):
        memory.add_memory(ref(f"s{n}", "acme"), say("hi"), user_id="ana")
    memory.add_memory(ref("b", "acme"), say("hi"), user_id="bruno")
    assert all(memory.is_users(ANA, ref(f"s{n}", "acme")) for n in range(5))  # not only the newest
    assert not memory.is_users(ANA, ref("b", "acme")) and not memory.is_users(ANA, ref("none", "acme"))
    assert not memory.is_users(UserRef("globex", "ana"), ref("s0", "acme"))


class _ListedInOne(FakeVectorIndex):
    """An index whose ``lookup_user`` reads the user's listed sessions in one step (as the Redis ones do on a single
    server), its vector side finding nothing (so each keyword candidate's vector is read after the lookup), and whose
    ``recheck`` says which sessions are still the user's."""

    def __init__(self, store: FakeMemoryStore, still: set[int]) -> None:
        super().__init__(store)
        self._users = store
        self.still = still
        self.rechecked: list[set[int]] = []

    def lookup_user(
        self,
        user: UserRef,
        query: Callable[[], Vectors],
        k: int,
        keywords: KeywordIndex,
        *,
        limit: int,
        session_ids: frozenset[str] | None,
    ) -> UserLookup | None:
        query()
        sessions = [ref(sid, user.tenant) for sid in self._users.listed_sessions(user, limit=limit)]
        found = Lookup(texts=self.texts_many(sessions), nearest=lambda: [], owned=[True] * len(sessions))
        return UserLookup(sessions=sessions, lookup=found, recheck=self._recheck)

    def _recheck(self, positions: set[int]) -> set[int]:
        self.rechecked.append(positions)
        return positions & self.still


def test_retrieve_user_given_vectors_read_after_the_lookup_keeps_only_the_sessions_its_recheck_keeps() -> None:
    # Given ana's two sessions, read in one lookup whose vector side found nothing, the first no longer hers after it
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    for n, sid in enumerate(("w1", "w2")):
        store.append(ref(sid, "acme"), say(f"peanuts {sid}"), context=None, namespace="", now_ms=1 + n, index=True,
                     user_id="ana")  # fmt: skip
    index = _ListedInOne(store, still=set())
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(session=ref("w1", "acme"), last_id=1))
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(session=ref("w2", "acme"), last_id=1))
    index.still = {store.listed_sessions(ANA, limit=10).index("w2")}
    service = RetrievalService(embedder=embedder, index=index, keywords=index, users=store)
    # When she searches (the keyword candidates' vectors read after the lookup)
    found = service.retrieve_user(ANA, "peanuts", 10)
    # Then the hits' sessions were checked again, and only the one still hers answers
    assert index.rechecked == [{0, 1}]
    assert [hit.session_id for hit in found] == ["w2"]
