"""The long-term index's record of what made its vectors: written once, checked by every process that indexes or
searches, so vectors of two embedders are never mixed."""

from __future__ import annotations

from motorhead.adapters.redis_db.connector import RedisConnector, mapped_errors
from motorhead.adapters.redis_db.keys import Keys
from motorhead.errors import ConfigError


def record_embedder(connector: RedisConnector, keys: Keys, *, embedder: str, dimensions: int) -> None:
    """Record which embedder made the index's vectors; refuse another one."""
    with mapped_errors():
        client = connector.client()
        client.hsetnx(keys.ltm_meta(), "embedder", embedder)
        client.hsetnx(keys.ltm_meta(), "dimensions", dimensions)
        recorded, recorded_dims = (str(value) for value in client.hmget(keys.ltm_meta(), ["embedder", "dimensions"]))
    if recorded != embedder or recorded_dims != str(dimensions):
        raise ConfigError(
            f"the long-term index holds vectors of {recorded} ({recorded_dims} dims) but this deployment embeds with "
            f"{embedder} ({dimensions} dims): keep the embedder, or clear the index (MOTORHEAD_KEY_PREFIX)"
        )
