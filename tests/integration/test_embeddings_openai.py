"""The OpenAI embedder against a real HTTP server speaking the OpenAI API (the scripted stub), through the real
``openai`` client: request shape, batching, order, dimensions, retries, timeouts, malformed answers, Azure."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from motorhead.adapters.openai_api.embedder import (
    OPENAI_BATCH,
    OPENAI_MAX_CHARS,
    OPENAI_MAX_TOKENS,
    OpenAIEmbedder,
    openai_embedder,
)
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.composition import long_term
from motorhead.errors import ConfigError, EmbeddingError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.openai_stub import Embeddings, Hang, Malformed, OpenAIStub, Status, stub_embedding


# --- fixtures and helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def openai_settings(stub: OpenAIStub, **overrides: str) -> Settings:
    values = {
        "OPENAI_API_BASE": stub.base_url,
        "OPENAI_API_KEY": "sk-test",
        "MOTORHEAD_LLM_TIMEOUT": "0.5",
        "MOTORHEAD_LLM_MAX_RETRIES": "2",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def embedder(stub: OpenAIStub) -> OpenAIEmbedder:
    built = long_term.embedder(openai_settings(stub))  # as the composition root builds it (texts cut with tiktoken)
    assert isinstance(built, OpenAIEmbedder)
    return built


def expected(texts: list[str], dimensions: int = 1536) -> np.ndarray:
    """What the stub's default answers for these texts."""
    return np.array([stub_embedding(text, dimensions) for text in texts], dtype=np.float32)


# --- one call: the request and the answer -----------------------------------------------------------------------
def test_embed_given_texts_sends_one_request_and_returns_unit_rows(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    # Given two texts / When they are embedded
    vectors = embedder.embed(["Ana likes tea", "Lyon is in France"])

    # Then one request carried the model, the texts and the dimensions, authenticated with the key
    (request,) = stub.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.inputs == ["Ana likes tea", "Lyon is in France"]
    assert request.body["dimensions"] == 1536
    # and the answer's vectors came back as unit float32 rows, in order
    assert vectors.shape == (2, 1536)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected(["Ana likes tea", "Lyon is in France"]), atol=1e-6)


def test_embed_given_items_answered_out_of_order_restores_input_order_by_index(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a server listing the items last to first (each with its index)
    stub.script(Embeddings(order="reversed"))
    texts = ["first text", "second text", "third text"]

    # When the texts are embedded / Then row i is still text i's vector
    np.testing.assert_allclose(embedder.embed(texts), expected(texts), atol=1e-6)


def test_embed_given_more_than_256_texts_batches_them_in_order(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    # Given 600 distinct texts
    texts = [f"message {i} about topic {i % 7}" for i in range(600)]

    # When they are embedded
    vectors = embedder.embed(texts)

    # Then they went in requests of at most 256, in order, and every row is its own text's vector
    assert [len(request.inputs) for request in stub.requests] == [OPENAI_BATCH, OPENAI_BATCH, 600 - 2 * OPENAI_BATCH]
    assert [text for request in stub.requests for text in request.inputs] == texts
    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)


def test_embed_given_no_text_returns_an_empty_matrix_without_a_request(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    assert embedder.embed([]).shape == (0, 1536)
    assert stub.requests == []


def test_embed_given_a_server_that_does_not_normalize_returns_unit_rows(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a compatible server returning vectors of length 3
    stub.script(Embeddings(scale=3.0))

    # When texts are embedded / Then the rows are normalized anyway
    vectors = embedder.embed(["a", "b c"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_embed_given_texts_sharing_words_ranks_them_closer(embedder: OpenAIEmbedder) -> None:
    # Given a query, a message sharing its words and an unrelated one / When embedded
    query, related, unrelated = embedder.embed(["where does Ana live", "Ana lives in Lyon", "the invoice is due"])

    # Then the stub's vectors behave like embeddings: the related message is nearer
    assert float(query @ related) > float(query @ unrelated) + 0.2


# --- inputs over the model's limit ------------------------------------------------------------------------------
def test_embed_given_a_very_long_text_truncates_it_to_the_character_budget(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a 100,000-character English text
    embedder.embed(["lorem ipsum " * 8_400])

    # Then what was sent fits in the character budget and under the model's token limit
    (sent,) = stub.requests[0].inputs
    assert len(sent) <= OPENAI_MAX_CHARS
    assert TiktokenCounter(model="text-embedding-3-small", cache_dir=PACKAGED_TIKTOKEN_CACHE).count(sent) < 8_192


def test_embed_given_a_long_cjk_text_truncates_it_to_the_token_limit(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given 20,000 CJK characters (within the character budget, but far over 8,192 tokens)
    text = "東京は日本の首都であり、多くの人々が住んでいます。" * 800

    # When it is embedded
    embedder.embed([text])

    # Then it was cut to at most 8,000 tokens, from its start
    (sent,) = stub.requests[0].inputs
    counter = TiktokenCounter(model="text-embedding-3-small", cache_dir=PACKAGED_TIKTOKEN_CACHE)
    assert counter.count(text) > 8_192
    assert OPENAI_MAX_TOKENS - 5 <= counter.count(sent) <= OPENAI_MAX_TOKENS
    assert text.startswith(sent.rstrip("\ufffd"))


def test_embed_given_an_empty_text_sends_a_space(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    # The API refuses an empty string; a space keeps the row
    assert embedder.embed(["", "x"]).shape == (2, 1536)
    assert stub.requests[0].inputs == [" ", "x"]


# --- models and dimensions --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "dimensions", "identity", "sent"),
    [
        ("text-embedding-3-small", None, "openai:text-embedding-3-small:1536", 1536),
        ("text-embedding-3-small", "512", "openai:text-embedding-3-small:512", 512),
        ("text-embedding-3-large", None, "openai:text-embedding-3-large:3072", 3072),
        ("text-embedding-3-large", "256", "openai:text-embedding-3-large:256", 256),
        ("text-embedding-ada-002", None, "openai:text-embedding-ada-002:1536", None),
        ("nomic-embed-text", "768", "openai:nomic-embed-text:768", None),
    ],
)
def test_embed_given_a_model_sends_dimensions_only_to_text_embedding_3(
    stub: OpenAIStub, model: str, dimensions: str | None, identity: str, sent: int | None
) -> None:
    # Given a model and maybe MOTORHEAD_EMBEDDING_DIMENSIONS
    overrides = {"MOTORHEAD_EMBEDDING_MODEL": model}
    if dimensions is not None:
        overrides["MOTORHEAD_EMBEDDING_DIMENSIONS"] = dimensions
    if sent is None and dimensions is not None:  # a model that cannot be asked: the server returns its size
        stub.script(Embeddings(vectors=[[1.0] * int(dimensions)]))
    embedder = openai_embedder(openai_settings(stub, **overrides), api_key="sk-test")

    # When a text is embedded
    vectors = embedder.embed(["hello"])

    # Then the identity names the model and size, and `dimensions` went only where the model takes it
    assert embedder.identity == identity
    assert vectors.shape == (1, embedder.dimensions)
    assert stub.requests[0].body.get("dimensions") == sent


def test_embedder_given_an_unknown_model_without_dimensions_raises_config_error(stub: OpenAIStub) -> None:
    with pytest.raises(ConfigError, match="MOTORHEAD_EMBEDDING_DIMENSIONS"):
        openai_embedder(openai_settings(stub, MOTORHEAD_EMBEDDING_MODEL="nomic-embed-text"), api_key="k")


@pytest.mark.parametrize(
    ("model", "dimensions"), [("text-embedding-3-small", "2048"), ("text-embedding-ada-002", "512")]
)
def test_embedder_given_dimensions_the_model_cannot_give_raises_config_error(
    stub: OpenAIStub, model: str, dimensions: str
) -> None:
    settings = openai_settings(stub, MOTORHEAD_EMBEDDING_MODEL=model, MOTORHEAD_EMBEDDING_DIMENSIONS=dimensions)
    with pytest.raises(ConfigError, match="not possible"):
        openai_embedder(settings, api_key="k")


def test_embed_given_vectors_of_another_size_than_configured_raises_embedding_error(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a compatible server that ignores `dimensions` (the index's size would be wrong)
    stub.script(Embeddings(vectors=[[0.5] * 768]))
    with pytest.raises(EmbeddingError, match="768"):
        embedder.embed(["hello"])


# --- failures ---------------------------------------------------------------------------------------------------
def test_embed_given_a_429_then_an_answer_succeeds_after_one_retry(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    # Given a rate limit (retry-after: 0) and then the default answer
    stub.script(Status(429))

    # When texts are embedded
    vectors = embedder.embed(["Ana likes tea"])

    # Then the client retried once with the same request
    first, second = stub.requests
    assert second.body == first.body
    assert second.headers["x-stainless-retry-count"] == "1"
    np.testing.assert_allclose(vectors, expected(["Ana likes tea"]), atol=1e-6)


def test_embed_given_500_on_every_attempt_raises_embedding_error(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    # Given a server failing more often than the client retries (MOTORHEAD_LLM_MAX_RETRIES=2)
    stub.script(Status(500), Status(500), Status(500), Embeddings())

    # When texts are embedded / Then 1 + 2 attempts were made and the error is the embedder's
    with pytest.raises(EmbeddingError, match="InternalServerError"):
        embedder.embed(["x"])
    assert len(stub.requests) == 3
    assert stub.pending == 1


def test_embed_given_a_400_raises_embedding_error_without_retrying(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    stub.script(Status(400))
    with pytest.raises(EmbeddingError, match="BadRequestError"):
        embedder.embed(["x"])
    assert len(stub.requests) == 1


def test_embed_given_a_server_slower_than_the_timeout_raises_embedding_error(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a server that hangs longer than MOTORHEAD_LLM_TIMEOUT (0.5 s) on every attempt
    stub.script(Hang(5.0), Hang(5.0), Hang(5.0))
    with pytest.raises(EmbeddingError, match="Timeout"):
        embedder.embed(["x"])
    assert len(stub.requests) == 3


def test_embed_given_a_failure_in_a_later_batch_raises_embedding_error(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    # Given a first batch answered and the second refused
    stub.script(Embeddings(), Status(400))
    with pytest.raises(EmbeddingError):
        embedder.embed([f"t{i}" for i in range(OPENAI_BATCH + 1)])
    assert len(stub.requests) == 2


VECTOR = [0.1] * 1536


@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "data": []},
        {"object": "list"},
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]},
        {"object": "list", "data": [{"object": "embedding", "index": 5, "embedding": VECTOR}]},
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": VECTOR}] * 2},
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "not base64!"}]},
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [float("nan")] * 1536}]},
        "<html>proxy error</html>",
    ],
    ids=["no-items", "no-data", "short-vector", "index-out-of-range", "duplicate-index", "bad-base64", "nan", "html"],
)
def test_embed_given_a_malformed_answer_raises_embedding_error(
    stub: OpenAIStub, embedder: OpenAIEmbedder, body: dict[str, object] | str
) -> None:
    # Given a server answering 200 with something that is not one vector per input
    stub.script(Malformed(body if isinstance(body, str) else {**body, "model": "m", "usage": {}}))

    # When a text is embedded / Then the index job fails (and SQS retries it) rather than storing a wrong vector
    with pytest.raises(EmbeddingError):
        embedder.embed(["x"])


def test_embed_given_fewer_vectors_than_inputs_raises_embedding_error(
    stub: OpenAIStub, embedder: OpenAIEmbedder
) -> None:
    stub.script(Embeddings(vectors=[VECTOR]))
    with pytest.raises(EmbeddingError, match="1 vectors for 2 inputs"):
        embedder.embed(["x", "y"])


# --- wiring: service, Azure -------------------------------------------------------------------------------------
def test_service_embedder_given_an_openai_base_url_uses_the_stub(stub: OpenAIStub) -> None:
    # Given settings naming an OpenAI-compatible server and a shorter vector
    settings = openai_settings(stub, MOTORHEAD_EMBEDDING_DIMENSIONS="256")

    # When the service's embedder embeds a text
    embedder = long_term.embedder(settings)
    vectors = embedder.embed(["hello"])

    # Then the server made it, at the configured size
    assert embedder.identity == "openai:text-embedding-3-small:256"
    assert vectors.shape == (1, 256)
    assert stub.requests[0].body["dimensions"] == 256


def test_azure_embedder_calls_the_ada_deployment_with_an_api_key(stub: OpenAIStub) -> None:
    # Given Azure OpenAI's variables, the endpoint being the stub's root, the deployment serving ada-002
    settings = Settings(
        MOTORHEAD_EMBEDDER="azure",
        OPENAI_API_KEY=None,
        OPENAI_API_BASE=None,
        AZURE_API_KEY="az-key",
        AZURE_API_BASE=stub.root_url,
        AZURE_DEPLOYMENT_ID_ADA="ada",
        MOTORHEAD_EMBEDDING_MODEL="text-embedding-ada-002",
        MOTORHEAD_LLM_TIMEOUT="0.5",
    )

    # When the service's embedder embeds texts
    embedder = long_term.embedder(settings)
    vectors = embedder.embed(["Ana likes tea", "Lyon"])

    # Then the request went to the deployment's route, with the API version and the api-key header (no bearer)
    (request,) = stub.requests
    assert embedder.identity == "azure:ada:1536"
    assert request.path == "/openai/deployments/ada/embeddings"
    assert request.deployment == "ada"
    assert request.query == {"api-version": [settings.azure_api_version]}
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers
    assert "dimensions" not in request.body
    np.testing.assert_allclose(vectors, expected(["Ana likes tea", "Lyon"]), atol=1e-6)


def test_azure_embedder_given_a_text_embedding_3_deployment_sends_dimensions(stub: OpenAIStub) -> None:
    settings = Settings(
        MOTORHEAD_EMBEDDER="azure",
        AZURE_API_KEY="az-key",
        AZURE_API_BASE=stub.root_url,
        AZURE_DEPLOYMENT_ID_ADA="emb3",
        MOTORHEAD_EMBEDDING_DIMENSIONS="512",
    )
    embedder = long_term.embedder(settings)
    assert embedder.embed(["x"]).shape == (1, 512)
    assert embedder.identity == "azure:emb3:512"
    assert stub.requests[0].body["dimensions"] == 512


def test_azure_embedder_given_no_embeddings_deployment_raises_config_error(stub: OpenAIStub) -> None:
    settings = Settings(
        MOTORHEAD_EMBEDDER="azure", AZURE_API_KEY="az-key", AZURE_API_BASE=stub.root_url, AZURE_DEPLOYMENT_ID_ADA=None
    )
    with pytest.raises(ConfigError, match="AZURE_DEPLOYMENT_ID_ADA"):
        long_term.embedder(settings)
