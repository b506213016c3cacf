"""The admin entry point: create, list and revoke API keys, and adopt tenant-less sessions into a tenant, invoked
through the AWS API under IAM (never over HTTP).

On AWS, Redis usually sits in a VPC that a laptop cannot reach; this function runs beside the others, in the VPC,
and is invoked with ``aws lambda invoke`` by whoever IAM allows to. Locally, ``make key`` invokes the same handler
(``devserver/keys.py``). The event is one command::

    {"action": "create", "tenant": "acme", "scopes": ["read", "write"], "label": "chat backend"}
    {"action": "list", "tenant": "acme"}          (tenant optional: every key)
    {"action": "revoke", "key_id": "0123456789abcdef"}
    {"action": "adopt", "tenant": "acme", "dry_run": true}   (dry_run optional: only count)

and the answer ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Only ``create`` ever returns a key, once.

``adopt`` is the migration of a deployment that turns auth on over existing data (``motorhead.core.tenancy``): it
moves every session stored with ``MOTORHEAD_AUTH=none`` under the tenant. Run it right after turning auth on (from
then on no request writes a tenant-less session). It works until the function's time is nearly up, then answers
``"complete": false``; invoking it again goes on where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import ALL_SCOPES
from motorhead.core.tenancy import SessionAdopter, adopt_sessions
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


class Adopt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["adopt"]
    tenant: str
    dry_run: bool = Field(False, strict=True)  # JSON true or false only: "no" or "0" is refused, never guessed


Command = Annotated[Create | ListKeys | Revoke | Adopt, Field(discriminator="action")]
_COMMAND: TypeAdapter[Create | ListKeys | Revoke | Adopt] = TypeAdapter(Command)

RESERVED_MS = 2_000  # an adoption stops between two sessions when less than this is left of the invocation


def admin_handler(
    keys: Callable[[], ApiKeys], migration: Callable[[], SessionAdopter] | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler; ``keys`` builds the key service, ``migration`` the adoption of tenant-less sessions, on
    first use (a cold start touches no Redis). Without ``migration``, ``adopt`` answers that it is not available."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            command = _COMMAND.validate_python(event)
        except ValidationError as exc:
            return {
                "ok": False,
                "error": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            }
        try:
            if isinstance(command, Adopt):
                if migration is None:
                    return {"ok": False, "error": "adopt is not available: this admin function has no migration"}
                return {"ok": True, **adopt(migration(), command, keep_going=_time_left(context))}
            return {"ok": True, **run(keys(), command)}
        except MotorheadError as exc:
            return {"ok": False, "error": str(exc)}

    return handler


def _time_left(context: Any) -> Callable[[], bool]:
    """Whether the invocation has time for one more session (always, without a Lambda context)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return lambda: True
    return lambda: int(remaining()) > RESERVED_MS


def adopt(adopter: SessionAdopter, command: Adopt, *, keep_going: Callable[[], bool]) -> dict[str, Any]:
    report = adopt_sessions(adopter, command.tenant, dry_run=command.dry_run, keep_going=keep_going)
    logger.info(
        "sessions adopted" if not command.dry_run else "sessions to adopt counted",
        extra={
            "tenant": report.tenant,
            "sessions_moved": report.sessions_moved,
            "documents_moved": report.documents_moved,
            "skipped": report.skipped,
            "conflicts": len(report.conflicts),
            "complete": report.complete,
        },
    )
    return asdict(report)


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
