"""Turning authentication on over existing data: a tenant adopts the sessions that were stored with no tenant.

With ``MOTORHEAD_AUTH=none`` every session belongs to no tenant (``NO_TENANT``) and keeps the keys it had before
tenants existed. Once a deployment switches to ``api-key`` or ``jwt``, every caller has a tenant, so those sessions
would become unreachable: no credential names "no tenant". Adopting them moves each one, with its messages, summary,
namespaces, list entries and long-term index, under one tenant, which then reads exactly what the tenant-less callers
read before.

The move is a one-off admin step (``{"action": "adopt", "tenant": "acme"}``), run after the switch (so no request
writes tenant-less sessions any more), and it must survive a crash or a Lambda timeout halfway: every step is
idempotent, a run stops early when ``keep_going`` says so, and the next run finishes what is left. Run before the
switch, it would leave behind whatever tenant-less callers write afterwards: a session written again after its move
exists twice then, and a later run reports it as a conflict instead of merging the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from motorhead.core.auth import check_tenant

MAX_REPORTED_CONFLICTS = 100


@dataclass(frozen=True, slots=True)
class AdoptionReport:
    """What one run did (or, with ``dry_run``, would do).

    - ``sessions_moved``: tenant-less sessions whose data now lives under the tenant;
    - ``documents_moved``: search documents (the `search` vector backend) re-created under the tenant's session tag;
    - ``skipped``: sessions with no tenant-less data left (moved by an earlier run that stopped before unlisting them,
      or list entries that never had data): only their list entries moved;
    - ``conflicts``: ids (at most ``MAX_REPORTED_CONFLICTS``) left untouched because the tenant already has a session
      of that id that did not come from an adoption, or another tenant's adoption of it is unfinished;
    - ``complete``: False when the run stopped early (time budget): run it again to go on.
    """

    tenant: str
    dry_run: bool
    sessions_moved: int = 0
    documents_moved: int = 0
    skipped: int = 0
    conflicts: list[str] = field(default_factory=list)
    complete: bool = True


class SessionAdopter(Protocol):
    """Moves every tenant-less session under a tenant (implemented on Redis by ``adapters.redis_db``)."""

    def adopt(self, tenant: str, *, dry_run: bool, keep_going: Callable[[], bool]) -> AdoptionReport:
        """Move (or, with ``dry_run``, only count) every tenant-less session; stop between two sessions as soon as
        ``keep_going()`` is False. Never touches the data of any tenant other than ``tenant``, and never moves a
        session over one the tenant created on its own."""
        ...


def adopt_sessions(
    adopter: SessionAdopter, tenant: str, *, dry_run: bool = False, keep_going: Callable[[], bool] = lambda: True
) -> AdoptionReport:
    """Adopt every tenant-less session into ``tenant`` (a valid tenant name, as API keys and JWTs carry)."""
    check_tenant(tenant)
    return adopter.adopt(tenant, dry_run=dry_run, keep_going=keep_going)
