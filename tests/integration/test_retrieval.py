"""Long-term memory end to end: POST → index job (SQS FIFO) → indexer → POST /retrieval, with the real local model."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from motorhead.adapters.redis_db.keys import Keys
from motorhead.ltm.ports import Vectors
from tests.integration.conftest import fresh_queue
from tests.openai_stub import OpenAIStub, Status
from tests.support import Api, body, cold_start, get_event, load_event, post_event, ref

CONVERSATION = [
    ("Human", "We are planning a trip to Colombia in March."),
    ("AI", "Great, Bogotá and Medellín are both lovely in March."),
    ("Human", "How do I dance to electronic music?"),
    ("AI", "Move with the beat, keep your knees loose and let the drop carry you."),
    ("Human", "My sister Ana is allergic to peanuts."),
    ("AI", "Noted: no peanuts in any restaurant suggestion."),
    ("Human", "What is the weather like in Bogotá?"),
    ("AI", "Mild, about 14 degrees, with afternoon rain."),
    ("Human", "Book the hotel near La Candelaria for five nights."),
    ("AI", "Hotel de la Opera is held for five nights from 12 March."),
]


def retrieval_event(session_id: str, payload: Any) -> dict[str, Any]:
    event = post_event(session_id, payload)
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /sessions/{session_id}/retrieval"
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/sessions/{session_id}/retrieval"
    return event


class Ltm:
    """The functions with long-term memory on, their two queues, and pollers standing in for Lambda's SQS triggers."""

    def __init__(self, api: Api, sqs: LocalSqs, index_queue: LocalQueue, summary_queue: LocalQueue) -> None:
        self.api = api
        self.indexer = SqsPoller(sqs, index_queue, handler=api.consumer("IndexerFunction"), max_backoff=0)
        self.summarizer = SqsPoller(sqs, summary_queue, handler=api.consumer("SummarizerFunction"), max_backoff=0)
        self.index_queue = index_queue
        self.sqs = sqs
        self.backend = "exact"

    def post(self, session_id: str, messages: list[tuple[str, str]]) -> None:
        payload = {"messages": [{"role": r, "content": c} for r, c in messages]}
        assert self.api.invoke("PostMemoryFunction", post_event(session_id, payload))["statusCode"] == 200

    def retrieve(self, session_id: str, text: str, **extra: Any) -> dict[str, Any]:
        return self.api.invoke("RetrievalFunction", retrieval_event(session_id, {"text": text, **extra}))


@pytest.fixture(params=["exact", "search"])
def server(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis
) -> Iterator[tuple[str, redis.Redis]]:
    """Plain Redis with the `exact` backend, or Redis 8.2 + RediSearch with the `search` backend; emptied."""
    chosen = redis_server if request.param == "exact" else search_server
    with redis.Redis(port=chosen.port, decode_responses=True) as client:
        client.flushall()
        yield request.param, client


@pytest.fixture
def redis_client(server: tuple[str, redis.Redis]) -> redis.Redis:
    return server[1]


@pytest.fixture
def ltm(local_sqs: LocalSqs, server: tuple[str, redis.Redis]) -> Iterator[Ltm]:
    backend, client = server
    index_queue = fresh_queue(local_sqs, "IndexerFunction")
    summary_queue = fresh_queue(local_sqs, "SummarizerFunction")
    port = client.connection_pool.connection_kwargs["port"]
    with cold_start(
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        MOTORHEAD_LONG_TERM_MEMORY="true",
        MOTORHEAD_MAX_WINDOW_SIZE="4",
        MOTORHEAD_SUMMARY_QUEUE_URL=summary_queue.url,
        MOTORHEAD_INDEX_QUEUE_URL=index_queue.url,
        MOTORHEAD_EMBEDDER="local",
        MOTORHEAD_VECTOR_BACKEND="auto",  # auto must pick `search` on the RediSearch server, `exact` elsewhere
        MOTORHEAD_SUMMARIZER="extractive",
    ) as api:
        ltm = Ltm(api, local_sqs, index_queue, summary_queue)
        ltm.backend = backend
        yield ltm


def test_retrieval_given_an_indexed_conversation_returns_the_nearest_messages_first(ltm: Ltm) -> None:
    # Given a conversation stored and indexed (one index job, handled by the indexer)
    ltm.post("trip", CONVERSATION[:6])
    ltm.post("trip", CONVERSATION[6:])
    assert ltm.indexer.drain() == 1
    # When the user's app asks for what is relevant to a paraphrase
    response = ltm.retrieve("trip", "dancing to EDM")
    # Then the matching message comes first, in Motorhead's shape plus fields old clients ignore
    assert response["statusCode"] == 200
    hits = body(response)
    assert hits[0]["content"] == "How do I dance to electronic music?"
    assert set(hits[0]) == {"role", "content", "dist", "id", "created_at", "score"}
    assert len(hits) == 10 and len({h["id"] for h in hits}) == 10
    # And (the fused recipe, the default) they come best score first, each with its cosine distance
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert all(0 <= h["dist"] <= 2 for h in hits) and hits[0]["dist"] == min(h["dist"] for h in hits)
    assert [h["content"] for h in body(ltm.retrieve("trip", "food allergy", k=2))][0] == CONVERSATION[4][1]
    assert len(body(ltm.retrieve("trip", "food allergy", k=3))) == 3


def test_retrieval_given_messages_summarized_out_of_the_window_still_finds_them(ltm: Ltm) -> None:
    # Given a conversation long past the window (4), summarized, and indexed
    ltm.post("trip", CONVERSATION)
    ltm.summarizer.drain()
    ltm.indexer.drain()
    memory = body(ltm.api.invoke("GetMemoryFunction", get_event("trip")))
    assert len(memory["messages"]) == 2 and memory["context"]
    # When an early message is searched for / Then it is found although GET no longer returns it
    assert body(ltm.retrieve("trip", "peanut allergy"))[0]["content"] == "My sister Ana is allergic to peanuts."


def test_delete_given_an_indexed_session_forgets_its_vectors_too(ltm: Ltm, redis_client: redis.Redis) -> None:
    # Given an indexed session
    ltm.post("trip", CONVERSATION)
    ltm.indexer.drain()
    assert body(ltm.retrieve("trip", "hotel"))
    # When it is deleted
    delete = copy.deepcopy(load_event("delete_memory-ok"))
    delete["pathParameters"] = {"session_id": "trip"}
    delete["rawPath"] = delete["requestContext"]["http"]["path"] = "/sessions/trip/memory"
    assert ltm.api.invoke("DeleteMemoryFunction", delete)["statusCode"] == 200
    # Then a retrieval finds nothing, and no key of the session remains (only the index's embedder record)
    assert body(ltm.retrieve("trip", "hotel")) == []
    assert redis_client.keys("*") == [Keys("mh").ltm_meta()]
    if ltm.backend == "search":  # and the shared search index holds no document of it
        assert redis_client.ft(Keys("mh").search_index()).search("*").total == 0


def test_post_given_many_posts_sends_one_index_job_per_lease(ltm: Ltm) -> None:
    for i in range(5):
        ltm.post("busy", [("Human", f"message number {i} about gardening")])
    received = ltm.sqs.client().receive_message(QueueUrl=ltm.index_queue.url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["last_id"] for m in received] == [1]


def test_indexer_given_posts_during_indexing_leaves_nothing_unindexed(
    ltm: Ltm, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first POST, and an indexer whose first embedding call lets a second POST in: it lands while the job
    # holds the session's lease, so it sends no job of its own
    from motorhead.composition.long_term import indexer_service

    ltm.post("s", [("Human", "first message about tomatoes")])
    indexer = indexer_service()  # the instance the indexer function runs
    model = indexer._embedder
    posted_during: list[str] = []

    class PostingDuringEmbed:
        identity, dimensions = model.identity, model.dimensions

        def embed(self, texts: Sequence[str]) -> Vectors:
            if not posted_during:
                posted_during.append("second")
                ltm.post("s", [("Human", "second message about cucumbers")])
            return model.embed(texts)

    monkeypatch.setattr(indexer, "_embedder", PostingDuringEmbed())
    # When the one queued job runs
    assert ltm.indexer.drain() == 1
    # Then the race happened (one job in all: the second POST found the lease held)...
    assert posted_during == ["second"]
    # ...and still every message ended up indexed, nothing is pending and the lease is free again
    session = Keys("mh").session(ref("s"))
    assert redis_client.zcard(session.pending) == 0
    assert not redis_client.hexists(session.meta, "idx_at")
    assert {h["content"] for h in body(ltm.retrieve("s", "vegetables"))} == {
        "first message about tomatoes",
        "second message about cucumbers",
    }


@pytest.mark.parametrize(
    ("payload", "status"),
    [({}, 422), ({"text": ""}, 422), ({"text": "x", "k": 0}, 422), ({"text": "x", "k": 101}, 422), ("[", 400)],
)
def test_retrieval_given_bad_input_returns_a_json_error(ltm: Ltm, payload: Any, status: int) -> None:
    event = retrieval_event("s", payload)
    response = ltm.api.invoke("RetrievalFunction", event)
    assert response["statusCode"] == status and "error" in body(response)


def test_retrieval_given_auto_backend_picks_search_only_where_the_server_has_it(ltm: Ltm) -> None:
    from motorhead.composition.long_term import retrieval_service

    ltm.post("s", [("Human", "anything")])
    ltm.indexer.drain()
    assert retrieval_service()._index.name == ltm.backend  # type: ignore[union-attr]


def test_retrieval_given_the_sample_event_answers_in_motorheads_shape(ltm: Ltm) -> None:
    ltm.post("session-42", CONVERSATION)
    ltm.indexer.drain()
    hits = body(ltm.api.invoke("RetrievalFunction", load_event("retrieval-ok")))
    assert len(hits) == 5 and all({"role", "content", "dist"} <= set(h) for h in hits)


def test_retrieval_given_long_term_memory_off_returns_400(redis_server: EmbeddedRedis) -> None:
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_LONG_TERM_MEMORY="false") as api:
        response = api.invoke("RetrievalFunction", retrieval_event("s", {"text": "hello"}))
    assert response["statusCode"] == 400
    assert "long-term memory is disabled" in body(response)["error"]


def openai_ltm(redis_url: str, index_queue: LocalQueue, stub: OpenAIStub) -> dict[str, str | None]:
    """Long-term memory on, indexed through ``index_queue`` with OpenAI embeddings served by ``stub``."""
    return {
        "REDIS_URL": redis_url,
        "MOTORHEAD_LONG_TERM_MEMORY": "true",
        "MOTORHEAD_INDEX_QUEUE_URL": index_queue.url,
        "MOTORHEAD_SUMMARY_QUEUE_URL": None,
        "MOTORHEAD_EMBEDDER": "openai",
        "OPENAI_API_BASE": stub.base_url,
        "OPENAI_API_KEY": "sk-test",
    }


def test_indexer_given_embedding_outage_dead_letters_keeps_pending_and_recovers(
    local_sqs: LocalSqs, redis_server: EmbeddedRedis
) -> None:
    # Given OpenAI-compatible embeddings (a real HTTP server) that fail for the next 5 calls, no client retries,
    # and an index lease of 1 s
    index_queue = fresh_queue(local_sqs, "IndexerFunction")
    with redis.Redis(port=redis_server.port, decode_responses=True) as client, OpenAIStub() as stub:
        client.flushall()
        stub.script(*[Status(500)] * 5)
        with cold_start(
            **openai_ltm(redis_server.url, index_queue, stub),
            MOTORHEAD_LLM_MAX_RETRIES="0",
            MOTORHEAD_INDEX_LEASE_SECONDS="1",
            MOTORHEAD_VECTOR_BACKEND="exact",
        ) as api:
            ltm = Ltm(api, local_sqs, index_queue, fresh_queue(local_sqs, "SummarizerFunction"))
            ltm.post("s", [("Human", "the boiler needs a yearly service in October")])
            # When the event source mapping keeps delivering the failing job
            assert ltm.indexer.drain(max_batches=20) == index_queue.consumer.max_receive_count
            # Then the job is in the dead-letter queue and the message is still pending, not lost
            dead = local_sqs.client().receive_message(QueueUrl=index_queue.dlq_url)["Messages"]
            assert json.loads(dead[0]["Body"])["session_id"] == "s"
            assert client.zcard(Keys("mh").session(ref("s")).pending) == 1
            assert body(ltm.retrieve("s", "boiler service")) == []
            # And once the provider is back, the session's next POST (after the lease) gets both indexed
            time.sleep(1.1)
            ltm.post("s", [("Human", "the plumber comes on Tuesday")])
            assert ltm.indexer.drain() == 1
            assert client.zcard(Keys("mh").session(ref("s")).pending) == 0
            found = {h["content"] for h in body(ltm.retrieve("s", "boiler service"))}
            assert found == {"the boiler needs a yearly service in October", "the plumber comes on Tuesday"}


@pytest.mark.parametrize("backend", ["exact", "search"])
def test_retrieval_given_openai_embeddings_runs_the_same_recipe_on_both_backends(
    backend: str, local_sqs: LocalSqs, redis_server: EmbeddedRedis, search_server: EmbeddedRedis
) -> None:
    # Given OpenAI-compatible embeddings (the stub: a real HTTP server) on either backend, and a conversation where
    # the answer to a question shares no word with it: it is the turn after the one that does
    chosen = redis_server if backend == "exact" else search_server
    index_queue = fresh_queue(local_sqs, "IndexerFunction")
    turns = [
        ("Melanie", "When did you go to the LGBTQ support group?"),
        ("Caroline", "Yes, last Tuesday, it was so powerful."),
        ("Melanie", "I painted a sunrise by the lake."),
        ("Caroline", "My kids love the beach in summer."),
        ("Melanie", "We camped in the mountains with the family."),
    ]
    with redis.Redis(port=chosen.port, decode_responses=True) as client, OpenAIStub() as stub:
        client.flushall()
        with cold_start(**openai_ltm(chosen.url, index_queue, stub), MOTORHEAD_VECTOR_BACKEND=backend) as api:
            ltm = Ltm(api, local_sqs, index_queue, fresh_queue(local_sqs, "SummarizerFunction"))
            ltm.post("s", turns)
            assert ltm.indexer.drain() == 1
            # Then each message was embedded with its speaker, as the local model's are
            embedded = [text for request in stub.requests for text in request.inputs]
            assert embedded == [f"{role}: {content}" for role, content in turns]
            # And the index records that recipe beside the embedder
            assert client.hget(Keys("mh").ltm_meta(), "dense_text") == "role-content"
            # When asking who went to the support group, naming its speaker
            hits = body(ltm.retrieve("s", "When did Caroline go to the support group?", k=2))
            # Then the two first are the question and its answer (Caroline's turn after it, found through its context
            # and its speaker), in the fused order
            assert {h["content"] for h in hits} == {turns[0][1], turns[1][1]}
            assert hits[0]["score"] >= hits[1]["score"]


def test_retrieval_given_a_session_id_over_the_limit_answers_400_before_embedding_anything(ltm: Ltm) -> None:
    # Given a session id of 2,000 bytes (the limit is 256), as for every other route
    response = ltm.retrieve("a" * 2000, "anything at all")
    # Then 400 with the sizes, like GET, POST and DELETE
    assert response["statusCode"] == 400
    assert body(response) == {"error": "session id is 2000 bytes; the limit is 256"}
