"""Wiring of the memory API: the Redis store and the job queues a POST sends to."""

from __future__ import annotations

from functools import lru_cache

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys, session_tag
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.memory import MemoryService
from motorhead.core.ports import JobQueue
from motorhead.core.values import MemoryLimits, Quotas
from motorhead.settings import Settings, get_settings


def redis_connector(settings: Settings) -> RedisConnector:
    """The Redis connector; its password, when ``MOTORHEAD_REDIS_PASSWORD_SECRET`` names a Secrets Manager secret,
    read from there on each new connection (cached by powertools), never from a plaintext variable."""
    secret = settings.redis_password_secret
    if not secret:
        return RedisConnector(settings)
    from motorhead.adapters.aws_secrets.secret_reader import secret_value

    return RedisConnector(settings, password=lambda: secret_value(secret))


@lru_cache(maxsize=1)
def shared_connector() -> RedisConnector:
    """The process's one Redis connector (one pool), shared by its services and its access control."""
    return redis_connector(get_settings())


def redis_store(settings: Settings, connector: RedisConnector | None = None) -> RedisMemoryStore:
    return RedisMemoryStore(
        connector or redis_connector(settings),
        Keys(settings.key_prefix),
        summary_lease_ms=settings.summary_lease_seconds * 1000,
        index_lease_ms=settings.index_lease_seconds * 1000,
    )


def job_queue(url: str | None) -> JobQueue | None:
    """The SQS FIFO queue at ``url`` (boto3 loads with the first job sent), or None when there is none."""
    if not url:
        return None
    from motorhead.adapters.sqs.job_queue import SqsJobQueue

    return SqsJobQueue(url, group_of=session_tag)


def memory_limits(settings: Settings) -> MemoryLimits:
    return MemoryLimits(
        window=settings.max_window_size,
        max_messages_per_request=settings.max_messages_per_request,
        max_message_bytes=settings.max_message_bytes,
        max_context_bytes=settings.max_context_bytes,
        max_session_id_bytes=settings.max_session_id_bytes,
    )


def memory_quotas(settings: Settings) -> Quotas:
    return Quotas(
        sessions=settings.quota_sessions,
        messages=settings.quota_messages,
        bytes=settings.quota_bytes,
        namespaces=settings.quota_namespaces,
    )


@lru_cache(maxsize=1)
def memory_service() -> MemoryService:
    settings = get_settings()
    return MemoryService(
        store=redis_store(settings, shared_connector()),
        limits=memory_limits(settings),
        quotas=memory_quotas(settings),
        summary_jobs=job_queue(settings.summary_queue_url),
        index_jobs=job_queue(settings.index_queue_url) if settings.long_term_memory else None,
        long_term_memory=settings.long_term_memory,
    )
