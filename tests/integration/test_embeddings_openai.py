"""The OpenAI embedder against a real HTTP server speaking the OpenAI API (the scripted stub), through the real
``openai`` client: request shape, batching, order, dimensions, retries, timeouts, malformed answers, Azure."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import numpy as np
import pytest

from motorhead.adapters.openai_api.embedder import (
    OPENAI_BATCH,
    OPENAI_MAX_CHARS,
    OPENAI_MAX_INPUTS,
    OPENAI_MAX_REQUEST_TOKENS,
    OPENAI_MAX_TOKENS,
    OpenAIEmbedder,
    openai_embedder,
)
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.composition import long_term
from motorhead.errors import ConfigError, EmbeddingError, EmbeddingUnavailableError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.openai_stub import Embeddings, Hang, Malformed, OpenAIStub, Status, stub_embedding

# --- fixtures and helpers ---------------------------------------------------------------------------------------
# Seconds a client waits for the stub where the test is not about timeouts: on a busy 2-core machine a 0.5 s one fired
# on a healthy 7 MB answer and the client retried, which the batching test counted as a failure.
ROOMY_TIMEOUT = "30"
SHORT_TIMEOUT = "0.5"  # the test of the timeout itself, against a stub that hangs for 5 s


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def openai_settings(stub: OpenAIStub, **overrides: str) -> Settings:
    values = {
        "OPENAI_API_BASE": stub.base_url,
        "OPENAI_API_KEY": "sk-test",
        "MOTORHEAD_LLM_TIMEOUT": ROOMY_TIMEOUT,
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
    with pytest.raises(EmbeddingError) as raised:
        embedder.embed(["hello"])
    assert "768" in (raised.value.detail or "")


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

    # When texts are embedded / Then 1 + 2 attempts were made and the error is the embedder's, a passing one (a 503),
    # the provider's own error in its detail only
    with pytest.raises(EmbeddingUnavailableError) as raised:
        embedder.embed(["x"])
    assert str(raised.value) == "the embedding provider is unavailable"
    assert (raised.value.detail or "").startswith("InternalServerError")
    assert len(stub.requests) == 3
    assert stub.pending == 1


def test_embed_given_a_400_raises_embedding_error_without_retrying(stub: OpenAIStub, embedder: OpenAIEmbedder) -> None:
    stub.script(Status(400))
    with pytest.raises(EmbeddingError) as raised:
        embedder.embed(["x"])
    assert not isinstance(raised.value, EmbeddingUnavailableError)  # a refusal is no passing state: a 502
    assert str(raised.value) == "the embedding provider failed"
    assert (raised.value.detail or "").startswith("BadRequestError")
    assert len(stub.requests) == 1


def test_embed_given_a_server_slower_than_the_timeout_raises_embedding_error(stub: OpenAIStub) -> None:
    # Given a server that hangs longer than MOTORHEAD_LLM_TIMEOUT (0.5 s) on every attempt
    embedder = long_term.embedder(openai_settings(stub, MOTORHEAD_LLM_TIMEOUT=SHORT_TIMEOUT))
    stub.script(Hang(5.0), Hang(5.0), Hang(5.0))
    with pytest.raises(EmbeddingUnavailableError) as raised:
        embedder.embed(["x"])
    assert "Timeout" in (raised.value.detail or "")
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
    with pytest.raises(EmbeddingError) as raised:
        embedder.embed(["x", "y"])
    assert "1 vectors for 2 inputs" in (raised.value.detail or "")


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
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
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


# --- requests sized by tokens, not only by inputs ---------------------------------------------------------------
def dense_text(seed: int, chars: int = OPENAI_MAX_CHARS) -> str:
    """About 0.5 token a character (words of random letters), so the 24,000 characters kept hold over 8,000 tokens;
    few words, so the stub's vectors are cheap and each text's differ."""
    letters = "".join(random.Random(seed).choices(string.ascii_lowercase, k=chars))
    return " ".join(f"{seed}x{letters[start : start + 38]}" for start in range(0, chars, 38))[:chars]


@pytest.fixture(scope="module")
def embedding_tokens() -> TiktokenCounter:
    """The encoding of the embedding models, as the composition root gives the embedder."""
    return TiktokenCounter(model="text-embedding-3-small", cache_dir=PACKAGED_TIKTOKEN_CACHE)


class SpyCounter:
    """A ``TokenCounter`` that records the texts it counted."""

    def __init__(self, counter: TiktokenCounter) -> None:
        self.model = counter.model
        self._counter = counter
        self.counted: list[str] = []

    def count(self, text: str) -> int:
        self.counted.append(text)
        return self._counter.count(text)

    def head(self, text: str, tokens: int) -> str:
        return self._counter.head(text, tokens)


def test_embed_given_128_texts_of_8k_tokens_sends_requests_under_the_token_limit_in_order(
    stub: OpenAIStub, embedding_tokens: TiktokenCounter
) -> None:
    # Given 128 distinct texts each cut to 8,000 tokens: 1M tokens, which one request of 128 inputs would carry and
    # the API refuse (300,000 tokens a request), on every retry (a timeout roomy enough for 1 MB bodies; short
    # vectors, which the stub computes faster)
    embedder = long_term.embedder(
        openai_settings(stub, MOTORHEAD_LLM_TIMEOUT="30", MOTORHEAD_EMBEDDING_DIMENSIONS="64")
    )
    texts = [dense_text(seed) for seed in range(128)]

    # When they are embedded
    vectors = embedder.embed(texts)

    # Then they went in several requests, each within the API's limits on tokens and on inputs
    sizes = [sum(embedding_tokens.count(text) for text in request.inputs) for request in stub.requests]
    assert len(stub.requests) == 4  # 37 texts of 8,000 tokens fill a request: 37 + 37 + 37 + 17, no needless split
    assert all(size <= OPENAI_MAX_REQUEST_TOKENS for size in sizes), sizes
    assert all(len(request.inputs) <= OPENAI_MAX_INPUTS for request in stub.requests)
    # and each text was sent once, in order, cut to 8,000 tokens from its start
    sent = [text for request in stub.requests for text in request.inputs]
    assert len(sent) == len(texts)
    for text, cut in zip(texts, sent, strict=True):
        assert text.startswith(cut)
        assert OPENAI_MAX_TOKENS - 5 <= embedding_tokens.count(cut) <= OPENAI_MAX_TOKENS
    # and every row is its own text's vector
    np.testing.assert_allclose(vectors, expected(sent, dimensions=64), atol=1e-6)


def test_embed_given_a_text_far_over_the_token_limit_sends_it_cut_to_8k_tokens(
    stub: OpenAIStub, embedder: OpenAIEmbedder, embedding_tokens: TiktokenCounter
) -> None:
    # Given one text of 50,000 tokens between two short ones
    long = dense_text(1, chars=100_000)
    assert embedding_tokens.count(long) > 50_000

    # When they are embedded
    vectors = embedder.embed(["before", long, "after"])

    # Then one request carried all three, the long one cut to 8,000 tokens
    (request,) = stub.requests
    before, cut, after = request.inputs
    assert (before, after) == ("before", "after")
    assert long.startswith(cut)
    assert OPENAI_MAX_TOKENS - 5 <= embedding_tokens.count(cut) <= OPENAI_MAX_TOKENS
    np.testing.assert_allclose(vectors, expected(["before", cut, "after"]), atol=1e-6)


def test_embed_given_many_tiny_texts_sends_one_request_without_counting_tokens(
    stub: OpenAIStub, embedding_tokens: TiktokenCounter
) -> None:
    # Given an embedder counting with a spy, and 200 short messages (far under 300,000 bytes in all)
    spy = SpyCounter(embedding_tokens)
    embedder = openai_embedder(openai_settings(stub), api_key="sk-test", counter=spy)
    texts = [f"message {i} about topic {i % 7}" for i in range(200)]

    # When they are embedded
    vectors = embedder.embed(texts)

    # Then one request carried them all, and no text had to be tokenized to know it would fit
    (request,) = stub.requests
    assert request.inputs == texts
    assert spy.counted == []
    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)


def test_embed_given_a_smaller_request_token_limit_packs_texts_greedily_in_order(
    stub: OpenAIStub, embedding_tokens: TiktokenCounter
) -> None:
    # Given a server taking 20,000 tokens a request, and texts of 8,000, 8,000, 1, 8,000 and 8,000 tokens
    embedder = openai_embedder(
        openai_settings(stub, MOTORHEAD_LLM_TIMEOUT="30"),
        api_key="sk-test",
        counter=embedding_tokens,
        max_request_tokens=20_000,
    )
    texts = [dense_text(1), dense_text(2), "short", dense_text(3), dense_text(4)]

    # When they are embedded
    vectors = embedder.embed(texts)

    # Then each request is filled while the next text fits: [8k, 8k, 1], [8k, 8k]
    assert [len(request.inputs) for request in stub.requests] == [3, 2]
    for request in stub.requests:
        assert sum(embedding_tokens.count(text) for text in request.inputs) <= 20_000
    sent = [text for request in stub.requests for text in request.inputs]
    assert sent[2] == "short"
    np.testing.assert_allclose(vectors, expected(sent), atol=1e-6)


def test_embed_given_a_request_token_limit_under_one_text_sends_that_text_alone(
    stub: OpenAIStub, embedding_tokens: TiktokenCounter
) -> None:
    # Given a limit smaller than the 8,000 tokens a text is cut to
    embedder = openai_embedder(
        openai_settings(stub), api_key="sk-test", counter=embedding_tokens, max_request_tokens=1_000
    )

    # When a long text is embedded between two short ones / Then it goes alone (the server says whether it takes it)
    embedder.embed(["a", dense_text(5), "b"])
    assert [len(request.inputs) for request in stub.requests] == [1, 1, 1]


def test_embed_given_no_counter_bounds_each_request_by_utf8_bytes(stub: OpenAIStub) -> None:
    # Given an embedder without a token counter (a compatible server with its own tokenizer), and 64 texts of
    # 24,000 characters, 2 bytes each: 48,000 bytes a text, an upper bound of its tokens
    embedder = openai_embedder(openai_settings(stub, MOTORHEAD_LLM_TIMEOUT="30"), api_key="sk-test", counter=None)
    texts = [f"{i} " + "é" * (OPENAI_MAX_CHARS - 3) for i in range(64)]

    # When they are embedded
    vectors = embedder.embed(texts)

    # Then each request held at most 300,000 bytes: 6 texts (6 x 48,000 = 288,000), the rest in the last, in order
    assert [len(request.inputs) for request in stub.requests] == [6] * 10 + [4]
    for request in stub.requests:
        assert sum(len(text.encode()) for text in request.inputs) <= OPENAI_MAX_REQUEST_TOKENS
    assert [text for request in stub.requests for text in request.inputs] == texts
    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)


def test_embedder_given_a_request_token_limit_under_one_raises_value_error(stub: OpenAIStub) -> None:
    with pytest.raises(ValueError, match="max_request_tokens"):
        openai_embedder(openai_settings(stub), api_key="sk-test", max_request_tokens=0)
