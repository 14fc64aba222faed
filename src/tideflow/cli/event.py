"""``tideflow event send|list|watch``: the project's event log from the shell."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption, open_client
from tideflow.cli.db import DbOption
from tideflow.cli.instant import SinceOption, UntilOption
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr, stdout
from tideflow.settings import DEFAULT_PROJECT

WATCH_POLL_SECONDS = 0.25
"""How soon ``event watch`` notices Ctrl-C when no event arrives."""

if TYPE_CHECKING:
    from tideflow.domain import Event

event_app = typer.Typer(help="Send, list and watch the project's events.", no_args_is_help=True)

KeysOption = Annotated[
    list[str] | None, typer.Option("--key", "-k", help="Only this key (repeatable).")
]
TypesOption = Annotated[
    list[str] | None, typer.Option("--type", "-t", help="Only this event type (repeatable).")
]
SenderOption = Annotated[str | None, typer.Option("--sender", help="Only this sender.")]


def event_dict(event: Event) -> dict[str, Any]:
    """The JSON form of an event, as ``--json`` prints it."""
    return {
        "offset": event.offset,
        "namespace": event.namespace,
        "key": event.key,
        "value": event.value,
        "event_type": event.event_type,
        "sender": event.sender,
        "context": dict(event.context),
        "create_time": event.create_time.isoformat() if event.create_time else None,
    }


def _line(event: Event) -> str:
    when = event.create_time.strftime("%H:%M:%S.%f")[:-3] if event.create_time else ""
    sender = f" from {event.sender}" if event.sender else ""
    return f"{event.offset:>8}  {when}  {event.event_type}  {event.key} = {event.value}{sender}"


@event_app.command("send")
def send(
    key: Annotated[str, typer.Argument(help="What the event is about (a model, a dataset...).")],
    value: Annotated[str, typer.Argument(help="The payload.")],
    event_type: Annotated[str, typer.Option("--type", "-t", help="Event type.")] = "UNDEFINED",
    sender: Annotated[str, typer.Option("--sender", help="Who sends it.")] = "cli",
    context: Annotated[str | None, typer.Option("--context", help="JSON object.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Send at most once per key.")
    ] = None,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Append one event to the project's log and print its offset."""
    parsed: dict[str, Any] | None = None
    if context is not None:
        try:
            parsed = json.loads(context)
        except ValueError as exc:
            fail(f"--context is not valid JSON: {exc}", code=2)
        if not isinstance(parsed, dict):
            fail("--context must be a JSON object", code=2)
    with open_client(db, project, server=server, token=token) as client:
        event = client.events.send(
            key,
            value,
            event_type=event_type,
            sender=sender,
            context=parsed,
            idempotency_key=idempotency_key,
        )
    if json_output:
        print_json(event_dict(event))
    else:
        stdout.print(f"sent event {event.offset} ({event.event_type} {event.key})")


@event_app.command("list")
def list_events(
    keys: KeysOption = None,
    event_types: TypesOption = None,
    sender: SenderOption = None,
    after: Annotated[int, typer.Option("--after", help="Only events after this offset.")] = 0,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 100,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", help="Continue a listing: the cursor the previous page printed."),
    ] = None,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """List stored events, oldest first."""
    with open_client(db, project, server=server, token=token, create_store=False) as client:
        page = client.events.list(
            keys=keys,
            event_types=event_types,
            sender=sender,
            after_offset=after,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
            cursor=cursor,
        )
    if json_output:
        print_json([event_dict(e) for e in page])
        if page.next_cursor is not None:
            stderr.print(f"more events follow: --cursor {page.next_cursor}")
        return
    from rich.table import Table

    table = Table("offset", "time (UTC)", "type", "key", "value", "sender")
    for e in page:
        when = e.create_time.strftime("%Y-%m-%d %H:%M:%S") if e.create_time else ""
        table.add_row(str(e.offset), when, e.event_type, e.key, e.value, e.sender)
    stdout.print(table)
    if page.next_cursor is not None:
        stderr.print(f"more events follow: --cursor {page.next_cursor}")


def _utc(moment: datetime | None) -> datetime | None:
    """Typer parses ISO times without a zone; the store compares in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@event_app.command("watch")
def watch(
    keys: KeysOption = None,
    event_types: TypesOption = None,
    sender: SenderOption = None,
    after: Annotated[
        int | None,
        typer.Option("--after", help="Replay events after this offset first (default: only new)."),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many events.")
    ] = None,
    db: DbOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print events live as they are committed; Ctrl-C stops."""
    seen = 0
    # A watch may begin before anything exists: it creates the store, unlike the listings.
    with open_client(db, project, server=server, token=token) as client:
        start = client.events.latest_offset() if after is None else after
        listener = client.events.listen(
            keys=keys, event_types=event_types, sender=sender, after_offset=start
        )
        # Ctrl-C raises a flag, looked at between polls. An explicit handler, not Python's
        # KeyboardInterrupt: a process started in the background by a shell without job control
        # inherits SIGINT ignored, and Python then never raises it (a CI run hung here); and an
        # interrupt raised at any bytecode could land inside the store's connection pool.
        interrupted: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
        # On stderr even with --json: scripts can wait for it to know the watch has begun.
        stderr.print(f"watching project '{project}' after offset {start} (Ctrl-C to stop)")
        try:
            while not interrupted and (count is None or seen < count):
                for event in listener.poll(WATCH_POLL_SECONDS):
                    if json_output:
                        print_json(event_dict(event))
                    else:
                        stdout.print(_line(event), markup=False)
                    seen += 1
                    if count is not None and seen >= count:
                        break
                if listener.closed:
                    break
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
            listener.close()
        if interrupted:
            stderr.print(
                f"stopped after {seen} event(s); resume with --after {listener.last_offset}"
            )
