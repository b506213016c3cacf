"""The long-term index's record of what made its vectors: written once, checked by every process that indexes or
searches, so that vectors of two embedders, or of two recipes, are never mixed.

The record holds the embedder, its dimensions and the recipe's dense text (``ltm/recipe.py``: what each message's
vector is made from). An index recorded by a version before the recipe has no dense text: its messages were embedded
as their content alone, so they go on being embedded that way (logged once per process) and the index keeps working,
its vectors never a mix; the keyword side and the fusion of the new recipe apply to it at once.
"""

from __future__ import annotations

import logging

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.errors import ConfigError
from motorhead.ltm.recipe import CURRENT_DENSE_TEXT, DenseText

logger = logging.getLogger(__name__)

# KEYS: the record. ARGV: embedder, dimensions, dense text. Written whole or not at all, so no process can see an
# embedder recorded without its dense text (which would read as an index of the previous version).
_RECORD = """
if redis.call('HEXISTS', KEYS[1], 'embedder') == 0 then
  redis.call('HSET', KEYS[1], 'embedder', ARGV[1], 'dimensions', ARGV[2], 'dense_text', ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'embedder', 'dimensions', 'dense_text')
"""

_warned: set[str] = set()


def record_embedder(connector: RedisConnector, keys: Keys, *, embedder: str, dimensions: int) -> DenseText:
    """Record which embedder and dense text make the index's vectors, or check the recorded ones; refuse another
    embedder. Returns the dense text to embed messages with."""
    record = keys.ltm_meta()
    recorded, recorded_dims, dense = connector.run_script(
        _RECORD, (record,), [embedder, dimensions, CURRENT_DENSE_TEXT.value]
    )
    if recorded != embedder or recorded_dims != str(dimensions):
        raise ConfigError(
            f"the long-term index holds vectors of {recorded} ({recorded_dims} dims) but this deployment embeds with "
            f"{embedder} ({dimensions} dims): keep the embedder, or clear the index (MOTORHEAD_KEY_PREFIX)"
        )
    if dense is None:
        if record not in _warned:
            _warned.add(record)
            logger.warning(
                "the long-term index was built by a version before the retrieval recipe: messages stay embedded as "
                "their content alone, so that its vectors are never mixed (keyword context and score fusion apply)",
                extra={"dense_text": DenseText.CONTENT.value},
            )
        return DenseText.CONTENT
    try:
        return DenseText(dense)
    except ValueError:
        raise ConfigError(f"the long-term index records an unknown dense text {dense!r}") from None
