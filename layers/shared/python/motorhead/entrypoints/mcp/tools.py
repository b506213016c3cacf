"""The MCP server factory: Motorhead's memory as five tools, each one call of the service its REST route calls.

Every tool acts as the caller its transport admitted (``acting_as``: over HTTP the request's credential, checked by the
same ``AccessControl`` as the REST routes before any MCP processing; over stdio the key in ``MOTORHEAD_API_KEY``), on
the caller's tenant, with the scope its REST route needs. A caller whose credential names a user (a JWT with
``MOTORHEAD_JWT_USER_CLAIM``) acts as that user alone: ``user_id`` is its own, an argument naming another user is
refused, and a session tool reaches only sessions bound to it. A domain error, a missing scope or long-term memory
being off is a tool error (``isError: true``) with the message the REST API gives (``message_for``: one mapping for
both), never a stack trace; arguments that fail their schema are tool errors too (the SDK's). Results are the REST
JSON as structured content, and a short text rendering.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Protocol, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    CallToolResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp.types import Tool as McpTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from motorhead import __version__
from motorhead.core.auth import Caller, Scope
from motorhead.core.memory import MemoryService, check_session_id
from motorhead.core.values import Hit, NewMessage, SearchFilters, SessionRef, UserHit, UserRef
from motorhead.entrypoints.http.errors import message_for, status_for
from motorhead.entrypoints.http.models import (
    MemoryOut,
    MessageIn,
    Query,
    RetrievalHitOut,
    StatusOut,
    Text,
    UserRetrievalHitOut,
)
from motorhead.errors import ConfigError, ForbiddenError, InvalidInputError, MotorheadError
from motorhead.observability import logger, session_hash
from motorhead.settings import Settings

SERVER_NAME = "motorhead"
INSTRUCTIONS = (
    "Long-term memory for conversations. A session is one conversation, named by any id you choose (up to 256 bytes). "
    "Save what was said with add_memory, read a session back with get_memory (its newest messages and a running "
    "summary), find relevant past messages by meaning with search_memory (in one session, or across every session "
    "of a user), list the sessions with list_sessions, and forget one with delete_memory."
)

NOT_THIS_USER = "this credential acts as one user and may not name another"
NOT_THEIR_SESSION = "this credential acts as one user: the session is not one of theirs"

Admit = Callable[[], Caller]
_admit: ContextVar[Admit | None] = ContextVar("motorhead_mcp_admit", default=None)
_origin: ContextVar[dict[str, str | None]] = ContextVar("motorhead_mcp_origin", default={})  # noqa: B039 - never mutated


@contextmanager
def acting_as(caller: Caller | Admit, *, key_id: str | None = None, source_ip: str | None = None) -> Iterator[None]:
    """Every tool called in this context (and in the tasks it starts) acts as ``caller``: a caller the transport
    admitted once (HTTP: one request), or a function admitting it again on every call (stdio: a process that runs for
    hours must honour a key revoked meanwhile; it raises ``AuthenticationError`` then). A refused call is logged with
    ``key_id`` (the presented key's public id, never the key) and ``source_ip``, as a refused HTTP request is."""
    token = _admit.set(caller if callable(caller) else lambda: caller)
    origin = _origin.set({"key_id": key_id, "source_ip": source_ip})
    try:
        yield
    finally:
        _admit.reset(token)
        _origin.reset(origin)


def admitted() -> Caller:
    """The caller this call acts as, admitted by the transport."""
    admit = _admit.get()
    if admit is None:
        raise ConfigError("an MCP tool was called without an admitted caller")
    return admit()


def current_caller(scope: Scope) -> Caller:
    """The caller the transport admitted, allowed ``scope`` (``ForbiddenError`` otherwise)."""
    caller = admitted()
    caller.require(scope)
    return caller


class Retrieval(Protocol):
    """What ``search_memory`` needs: ``RetrievalService``, or ``DisabledRetrieval`` when long-term memory is off."""

    def retrieve(self, session: SessionRef, text: str, k: int) -> list[Hit]: ...

    def retrieve_user(
        self, user: UserRef, text: str, k: int, filters: SearchFilters | None = None
    ) -> list[UserHit]: ...


class SearchOut(BaseModel):
    """``search_memory``'s result: the REST retrieval's list of hits, best first (``session_id`` on a user search)."""

    model_config = ConfigDict(frozen=True)

    hits: list[UserRetrievalHitOut | RetrievalHitOut]


class SessionsOut(BaseModel):
    """``list_sessions``'s result: the REST body (the ids) and its ``X-Total-Count`` / ``X-Next-Page`` headers."""

    model_config = ConfigDict(frozen=True)

    session_ids: list[str]
    total: int = Field(description="How many sessions there are in all")
    next_page: int | None = Field(description="The next page's number, null on the last page")


SessionIdArg = Annotated[
    Text, Field(description="The session (conversation) id: any string of 1 to 256 UTF-8 bytes, chosen by you")
]
UserIdArg = Annotated[Text | None, Field(description="The user the session belongs to (1 to 256 UTF-8 bytes)")]


def _result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json")
    )


def acting_user(caller: Caller, user_id: str | None) -> str | None:
    """The user a tool acts for: the caller's own when its credential names one (an argument naming another user is
    refused: a prompt-injected agent cannot reach another user's memory), else the argument."""
    if caller.user is None:
        return user_id
    if user_id is not None and user_id != caller.user:
        raise ForbiddenError(NOT_THIS_USER)
    return caller.user


def _tool_error(exc: MotorheadError) -> ToolError:
    """The REST API's client-safe message; a failure on our side logged with its detail, as the REST routes do."""
    status = status_for(exc)
    if status >= 500:
        logger.error(
            "tool failed", extra={"status": status, "kind": type(exc).__name__, "error": str(exc), "detail": exc.detail}
        )
    else:
        logger.info("tool refused", extra={"status": status, "reason": str(exc), "origin": dict(_origin.get())})
    return ToolError(message_for(exc))


def invalid_arguments(tool: str, error: ValidationError) -> str:
    """What a model needs to mend its call: each field and the rule it broke, never the value it sent (pydantic's own
    text echoes the input, which may be a user's data, and a URL)."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in problem["loc"]) or "arguments"
        problems.append(f"{field}: {problem['msg']}")
    return f"invalid arguments for {tool}: " + "; ".join(problems)


# What this server has: tools, and a list of them that never changes while it runs (no notification is ever sent).
CAPABILITIES: dict[str, Any] = {"tools": {"listChanged": False}}
ADVERTISING = frozenset({"initialize", "server/discover"})  # the answers that carry the capabilities
NOT_SERVED = ("prompts/", "resources/", "completion/", "logging/")


async def tools_only(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """The SDK's server middleware: advertise tools alone (``initialize`` for clients of the previous revisions,
    ``server/discover`` for the current one), and answer the methods of what it does not advertise as unknown. The
    SDK derives capabilities from the handlers ``MCPServer`` registers, which include empty prompts and resources
    (with ``listChanged`` and ``subscribe`` on the current revision): a client would list them, or wait for changes
    that never come."""
    if ctx.method.startswith(NOT_SERVED):
        raise MCPError(METHOD_NOT_FOUND, "Method not found")
    result = await call_next(ctx)
    if ctx.method in ADVERTISING and isinstance(result, dict):
        result = {**result, "capabilities": CAPABILITIES}
    return result


class MemoryServer(MCPServer[Any]):
    """The SDK's server, with three differences: it advertises tools alone (``tools_only``); ``tools/list`` shows a
    caller only the tools its scopes allow (a read-only key sees the three read tools); and arguments that fail
    their schema are answered field by field (``invalid_arguments``)."""

    def __init__(self, **settings: Any) -> None:
        # No subscriptions/listen: a stateless server has no stream to send changes on, and its tools never change.
        super().__init__(**settings, subscriptions=False, middleware=[tools_only])
        self.scopes: dict[str, Scope] = {}  # each tool's scope, as its REST route's

    async def list_tools(self) -> list[McpTool]:
        try:
            caller = admitted()
        except MotorheadError as exc:  # stdio: the key was revoked since the process started
            raise MCPError(INVALID_REQUEST, message_for(exc)) from None
        return [tool for tool in await super().list_tools() if caller.may(self.scopes[tool.name])]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(invalid_arguments(name, exc.__cause__)) from exc.__cause__
            raise


Tool = TypeVar("Tool", bound=Callable[..., CallToolResult])


def _tool(
    server: MemoryServer, *, name: str, title: str, scope: Scope, annotations: ToolAnnotations
) -> Callable[[Tool], Tool]:
    """Register a tool; its description is its docstring, without the code's indentation (a model reads it)."""

    def register(function: Tool) -> Tool:
        description = inspect.cleandoc(function.__doc__ or "")
        server.add_tool(function, name=name, title=title, description=description, annotations=annotations)
        server.scopes[name] = scope
        return function

    return register


def _guarded(call: Callable[[], CallToolResult]) -> CallToolResult:
    try:
        return call()
    except MotorheadError as exc:
        raise _tool_error(exc) from None
    finally:
        # This call's session, never on the next call's lines: over stdio one process serves every call, and no
        # request's end clears the logger's keys (over HTTP, Lambda's context does).
        logger.remove_keys(["session"])


def _render_messages(memory: MemoryOut) -> str:
    lines = [f"{len(memory.messages)} messages (newest first), {memory.tokens} tokens."]
    if memory.context:
        lines.append(f"Summary: {memory.context}")
    lines += [f"{message.role}: {message.content}" for message in memory.messages]
    return "\n".join(lines)


def _render_hits(hits: Sequence[RetrievalHitOut]) -> str:
    if not hits:
        return "No matching messages."
    return "\n".join(
        f"[{getattr(hit, 'session_id', '')}] {hit.role}: {hit.content}".removeprefix("[] ") for hit in hits
    )


def memory_server(*, memory: MemoryService, retrieval: Retrieval, settings: Settings) -> MemoryServer:
    """The MCP server of the memory: the five tools over ``memory`` and ``retrieval``, for any transport."""
    server = MemoryServer(
        name=SERVER_NAME,
        title="Motorhead memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        # The SDK configures the root logger when nothing has (logging.basicConfig): at WARNING, the default level, it
        # logs nothing per request (a session manager's start and stop are INFO); its warnings (a refused Host) and
        # errors still show. Our own lines are the powertools Logger's.
        log_level="WARNING",
    )
    max_id_bytes = settings.max_session_id_bytes

    def session_of(caller: Caller, session_id: str, *, theirs: bool = True) -> SessionRef:
        """The caller's session ``session_id``; for a caller that is a user (``theirs``), one bound to that user."""
        session = SessionRef(tenant=caller.tenant, id=session_id)
        check_session_id(session.id, max_id_bytes)
        logger.append_keys(session=session_hash(session))  # never the id itself
        if theirs and caller.user is not None and not memory.is_users(memory.user(caller.tenant, caller.user), session):
            raise ForbiddenError(NOT_THEIR_SESSION)
        return session

    @_tool(
        server,
        name="add_memory",
        scope=Scope.WRITE,
        title="Save messages to a session",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
    )
    def add_memory(
        session_id: SessionIdArg,
        messages: Annotated[
            list[MessageIn],
            Field(description='The messages to append, oldest first: [{"role": "user", "content": "..."}]'),
        ],
        user_id: UserIdArg = None,
    ) -> Annotated[CallToolResult, StatusOut]:
        """Append messages to a session's memory (all of them or none), as POST /sessions/{id}/memory does. Use it to
        remember what was said; each call adds the messages again, so do not repeat a call that succeeded. With
        user_id, the session belongs to that user (a session of another user is refused)."""

        def call() -> CallToolResult:
            caller = current_caller(Scope.WRITE)
            user = acting_user(caller, user_id)
            session = session_of(caller, session_id, theirs=False)  # bound on this write; another user's is refused
            new = [NewMessage(role=message.role, content=message.content) for message in messages]
            memory.add_memory(session, new, user_id=user, adopt=caller.user is None)
            return _result(StatusOut(), f"Saved {len(new)} message(s) to the session.")

        return _guarded(call)

    @_tool(
        server,
        name="get_memory",
        scope=Scope.READ,
        title="Read a session",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def get_memory(session_id: SessionIdArg) -> Annotated[CallToolResult, MemoryOut]:
        """Read a session back: its newest messages (newest first), the running summary of older ones (context) and
        the token count, as GET /sessions/{id}/memory returns them. An unknown session is simply empty."""

        def call() -> CallToolResult:
            caller = current_caller(Scope.READ)
            out = MemoryOut.of(memory.get_memory(session_of(caller, session_id)))
            return _result(out, _render_messages(out))

        return _guarded(call)

    @_tool(
        server,
        name="search_memory",
        scope=Scope.READ,
        title="Search past messages",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def search_memory(
        text: Annotated[Query, Field(description="What to look for, in plain words")],
        session_id: Annotated[Text | None, Field(description="Search this session only")] = None,
        user_id: Annotated[Text | None, Field(description="Search every session of this user")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many messages to return")] = 10,
    ) -> Annotated[CallToolResult, SearchOut]:
        """Find the past messages most relevant to a text, best first, by meaning and keywords (long-term memory).
        Give exactly one of session_id (one conversation) or user_id (every conversation of that user)."""

        def call() -> CallToolResult:
            caller = current_caller(Scope.READ)
            if (session_id is None) == (user_id is None):
                raise InvalidInputError("give exactly one of session_id or user_id")
            searched_user = acting_user(caller, user_id) if user_id is not None else None
            hits: list[UserRetrievalHitOut | RetrievalHitOut]
            if session_id is not None:
                session = session_of(caller, session_id)
                hits = [RetrievalHitOut.of(hit) for hit in retrieval.retrieve(session, text, limit)]
            else:
                assert searched_user is not None  # one of the two, checked above
                user = memory.user(caller.tenant, searched_user)
                hits = [UserRetrievalHitOut.of_user(found) for found in retrieval.retrieve_user(user, text, limit)]
            return _result(SearchOut(hits=hits), _render_hits(hits))

        return _guarded(call)

    @_tool(
        server,
        name="delete_memory",
        scope=Scope.DELETE,
        title="Forget a session",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    def delete_memory(session_id: SessionIdArg) -> Annotated[CallToolResult, StatusOut]:
        """Forget a session for good: its messages, summary and long-term memory, as DELETE /sessions/{id}/memory.
        It cannot be undone; deleting an unknown session succeeds."""

        def call() -> CallToolResult:
            caller = current_caller(Scope.DELETE)
            memory.delete_memory(session_of(caller, session_id))
            return _result(StatusOut(), "The session is forgotten.")

        return _guarded(call)

    @_tool(
        server,
        name="list_sessions",
        scope=Scope.LIST,
        title="List sessions",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def list_sessions(
        page: Annotated[int, Field(ge=1, le=1_000_000, description="The page, counted from 1")] = 1,
        size: Annotated[int, Field(ge=1, le=100, description="Sessions per page")] = 10,
        namespace: Annotated[Text | None, Field(description="Only the sessions listed under this namespace")] = None,
        user_id: Annotated[Text | None, Field(description="Only the sessions of this user")] = None,
    ) -> Annotated[CallToolResult, SessionsOut]:
        """List the session ids, least recently written first, a page at a time, as GET /sessions does."""

        def call() -> CallToolResult:
            caller = current_caller(Scope.LIST)
            user = acting_user(caller, user_id)
            found = memory.list_sessions(caller.tenant, page=page, size=size, namespace=namespace, user_id=user)
            out = SessionsOut(session_ids=found.session_ids, total=found.total, next_page=found.next_page)
            more = f"; next page: {out.next_page}" if out.next_page is not None else ""
            return _result(out, f"{out.total} sessions in all{more}.\n" + "\n".join(out.session_ids))

        return _guarded(call)

    return server
