"""The admin entry point: create, list and revoke API keys, invoked through the AWS API under IAM (never over HTTP).

On AWS, Redis usually sits in a VPC that a laptop cannot reach; this function runs beside the others, in the VPC,
and is invoked with ``aws lambda invoke`` by whoever IAM allows to. Locally, ``make key`` invokes the same handler
(``devserver/keys.py``). The event is one command::

    {"action": "create", "tenant": "acme", "scopes": ["read", "write"], "label": "chat backend"}
    {"action": "list", "tenant": "acme"}          (tenant optional: every key)
    {"action": "revoke", "key_id": "0123456789abcdef"}

and the answer ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Only ``create`` ever returns a key, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import ALL_SCOPES
from motorhead.errors import MotorheadError
from motorhead.observability import logger


class Create(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["create"]
    tenant: str
    scopes: list[str] = Field(default_factory=lambda: sorted(scope.value for scope in ALL_SCOPES))
    label: str = ""


class ListKeys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["list"]
    tenant: str | None = None


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["revoke"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")


Command = Annotated[Create | ListKeys | Revoke, Field(discriminator="action")]
_COMMAND: TypeAdapter[Create | ListKeys | Revoke] = TypeAdapter(Command)


def admin_handler(keys: Callable[[], ApiKeys]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler; ``keys`` builds the key service on first use (a cold start touches no Redis)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            command = _COMMAND.validate_python(event)
        except ValidationError as exc:
            return {
                "ok": False,
                "error": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            }
        try:
            return {"ok": True, **run(keys(), command)}
        except MotorheadError as exc:
            return {"ok": False, "error": str(exc)}

    return handler


def run(keys: ApiKeys, command: Create | ListKeys | Revoke) -> dict[str, Any]:
    if isinstance(command, Create):
        key, info = keys.create(command.tenant, scopes=command.scopes, label=command.label)
        logger.info("api key created", extra={"key_id": info.key_id})
        return {"key": key, **asdict(info)}
    if isinstance(command, ListKeys):
        return {"keys": [asdict(info) for info in keys.list(command.tenant)]}
    revoked = keys.revoke(command.key_id)
    logger.info("api key revoked", extra={"key_id": command.key_id, "existed": revoked})
    return {"key_id": command.key_id, "revoked": revoked}
