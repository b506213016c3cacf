"""Wiring of long-term memory: the embedder, the vector and keyword indexes, retrieval and the indexer."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.composition.memory import redis_store, shared_connector
from motorhead.composition.providers import embedding_reserve, provider_key
from motorhead.core.job_loop import StepBudget
from motorhead.ltm.disabled import DisabledRetrieval
from motorhead.observability import enable_tracing
from motorhead.settings import Settings, get_settings

if TYPE_CHECKING:  # numpy and the embedders load only when long-term memory is on
    from motorhead.ltm.bm25 import SessionTexts
    from motorhead.ltm.indexing import IndexerService
    from motorhead.ltm.ports import Embedder, KeywordIndex, VectorIndex
    from motorhead.ltm.retrieval import RetrievalService


@lru_cache(maxsize=1)
def retrieval_service() -> RetrievalService | DisabledRetrieval:
    settings = get_settings()
    if not settings.long_term_memory:
        return DisabledRetrieval()
    from motorhead.ltm.retrieval import RetrievalService

    enable_tracing()  # subsegments around its Redis and embedding calls

    connector = shared_connector()
    embed = embedder(settings)
    index, keywords = retrieval_indexes(settings, connector, dimensions=embed.dimensions)
    return RetrievalService(
        embedder=embed,
        index=index,
        keywords=keywords,
        hybrid=settings.retrieval_hybrid,
        users=redis_store(settings, connector),
    )


@lru_cache(maxsize=1)
def indexer_service() -> IndexerService:
    from motorhead.ltm.indexing import IndexerService

    enable_tracing()  # subsegments around its Redis and embedding calls
    settings = get_settings()
    connector = shared_connector()
    embed = embedder(settings)
    return IndexerService(
        store=redis_store(settings, connector),
        embedder=embed,
        index=vector_index(settings, connector, dimensions=embed.dimensions),
        budget=StepBudget(reserve=embedding_reserve(settings), max_rounds=50),
    )


def embedder(settings: Settings) -> Embedder:
    """The local ONNX model, or OpenAI / Azure embeddings (keys as for the summarizer)."""
    kind = settings.embedder_kind()
    if kind == "local":
        from motorhead.adapters.onnx_local.embedder import local_embedder

        return local_embedder(settings)
    from motorhead.adapters.openai_api import embedder as openai_embeddings
    from motorhead.adapters.tiktoken_local.counter import TiktokenCounter

    # texts are cut to the models' input limit, counted in their encoding
    counter = TiktokenCounter(
        model=openai_embeddings.OPENAI_TOKEN_ENCODING_MODEL, cache_dir=settings.tiktoken_cache_dir
    )
    if kind == "azure":
        return openai_embeddings.azure_embedder(settings, api_key=provider_key(settings, "azure"), counter=counter)
    return openai_embeddings.openai_embedder(settings, api_key=provider_key(settings, "openai"), counter=counter)


def retrieval_indexes(
    settings: Settings, connector: RedisConnector, *, dimensions: int
) -> tuple[VectorIndex, KeywordIndex]:
    """What retrieval reads: the configured vector index, serving the keyword side too (one object), so that a
    session's texts and vectors come from one read (one round trip on the `exact` backend)."""
    from motorhead.ltm.bm25 import SessionTexts

    index = vector_index(settings, connector, dimensions=dimensions, new_texts=SessionTexts)
    return index, cast("KeywordIndex", index)


def vector_index(
    settings: Settings,
    connector: RedisConnector,
    *,
    dimensions: int,
    new_texts: Callable[[], SessionTexts] | None = None,
) -> VectorIndex:
    """The configured backend; ``auto`` decides on first use (see ``motorhead.adapters.redis_db.vector_backend``).
    With ``new_texts`` it is the keyword index too (``KeywordIndex``)."""
    from motorhead.adapters.redis_db.vector_backend import AutoVectorIndex, make_index

    keys = Keys(settings.key_prefix)
    if settings.vector_backend == "auto":
        return AutoVectorIndex(connector, keys, dimensions=dimensions, new_texts=new_texts)
    return make_index(settings.vector_backend, connector, keys, dimensions=dimensions, new_texts=new_texts)
