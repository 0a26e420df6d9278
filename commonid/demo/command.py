"""`commonid demo`: start the world, guide staff on the terminal, stop everything once."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from commonid.demo.phone import prove_over_20, take_offer
from commonid.demo.processes import (
    CardSlot,
    Children,
    DemoFailed,
    DemoStopped,
    StopSignals,
    check_ports,
    ensure_pcscd,
    script,
)
from commonid.demo.stories import STORIES, start_story, story
from commonid.demo.world import (
    DEMO_PERSONS,
    DemoWorld,
    build_world,
    kept_world,
    person,
    pre_verify_with_provider_a,
    save_world,
    service_environment,
)

VPCD_PORT = 35963
VPCD_READER = "Virtual PCD 00 00"


def say(message: str = "") -> None:
    # Stories report from their own threads: one write per line keeps lines whole.
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _start_world(data_dir: Path, service_port: int, kiosk_port: int, keep: bool) -> DemoWorld:
    if keep:
        world = kept_world(data_dir, service_port=service_port, kiosk_port=kiosk_port)
        if world is not None:
            say(f"Keeping the demo world made {world.created_at} in {data_dir} (same API keys)")
            if world.kept_from_service_port != service_port:
                say(
                    f"  note: it was made with --service-port {world.kept_from_service_port}; "
                    "credentials issued then name that address"
                )
            return world
        say(f"--keep: no complete demo world in {data_dir} yet; making one")
    return build_world(data_dir, service_port=service_port, kiosk_port=kiosk_port, say=say)


def _announce_card(slot: CardSlot, key: str, present: bool, children: Children) -> None:
    demo = person(key)
    if present:
        say(f"Card in reader {slot.reader}: demo person {key}, {demo.record.name}")
    else:
        say(
            f"The card of demo person {key} did not appear in reader {slot.reader}; "
            f"see {children.log_path('card')}"
        )


def print_guide(world: DemoWorld, children: Children) -> None:
    say()
    say("=" * 72)
    say("Common-ID demo is running.")
    say(f"  Kiosk page (open in a browser):  {world.kiosk_url}")
    say(f"  Service API / OpenAPI:           {world.service_url}/docs")
    say(f"  Logs (service, agent, card):     {children.log_dir}/")
    if world.reviewer_credential:
        say(f"  Reviewer pages and PoC report:   {world.service_url}/reviewer/")
        say(f"    reviewer credential:           {world.reviewer_credential}")
    say()
    say("Demo persons (fictional; virtual cards):")
    for demo in DEMO_PERSONS:
        say(
            f"  [{demo.key}] {demo.record.name}  PIN {demo.auth_pin}  "
            f"password {demo.sign_password}  -- {demo.story}"
        )
    say()
    say("Provider API keys:")
    for name, key in world.provider_keys.items():
        say(f"  {name}: {key}")
    say()
    say("Play a provider from here (the user code and then the result are printed):")
    for each in STORIES:
        say(f"  {each.key} + Enter: {each.provider}, {each.hint}")
    say("The person's wallet (a phone, played by the reference wallet `commonid wallet`):")
    say("  w + Enter: after a verification at the kiosk, the phone takes the offer on its screen")
    say("  p + Enter: Demo Pay B asks the phone to prove 'over 20' (OpenID4VP), no birth date")
    say("or from another terminal, with the provider SDK's quick start:")
    say(
        f"  {sys.executable} -m commonid.quickstart --service {world.service_url} "
        f"--api-key {world.provider_keys['Demo Pay A']} --mode identity"
    )
    say()
    say("1, 2 or 3 + Enter: put that person's card in the reader; r: take it out; q: quit.")
    say("=" * 72)


def _fail(failure: DemoFailed) -> int:
    typer.echo(f"commonid demo: {failure}", err=True)
    return failure.exit_code


def run_demo(data_dir: Path, *, service_port: int, kiosk_port: int, once: bool, keep: bool) -> int:
    """Run until ``q`` or a signal; everything started is stopped before this returns.

    Returns the exit status: 0, 1 when something failed (said on stderr), 2 for
    a port that is taken (nothing is started then).
    """
    try:
        check_ports(service_port, kiosk_port)
    except DemoFailed as failure:
        return _fail(failure)
    status = 0
    signals = StopSignals()
    signals.install()
    stopping = threading.Event()
    # The log directory lives in the world; a fresh world wipes data_dir first.
    children = Children(data_dir / "logs", signals)
    slot = CardSlot(children, VPCD_READER, VPCD_PORT)
    try:
        world = _start_world(data_dir, service_port, kiosk_port, keep)
        if ensure_pcscd(children):
            say("Started pcscd (PC/SC daemon with the vpcd virtual reader)")
        say(f"Starting the Common-ID service on {world.service_url} (SQLite)")
        service = children.start(
            "service",
            [script("commonid"), "serve", "--host", "127.0.0.1", "--port", str(service_port)],
            env=service_environment(data_dir, service_port),
        )
        children.wait_http("service", service, f"{world.service_url}/healthz", "the service")
        if world.kept_from_service_port is None:
            pre_verify_with_provider_a(world, person("2"))
            save_world(world)
            say("Demo person 2 verified once at Demo Pay A (for the reuse story)")

        say(f"Starting the kiosk agent on {world.kiosk_url}")
        kiosk = children.start(
            "kiosk-agent",
            [
                script("commonid-kiosk"),
                "--service-url",
                world.service_url,
                "--kiosk-credential-file",
                str(data_dir / "kiosk.credential"),
                "--reader",
                VPCD_READER,
                "--reader-choice-file",
                str(world.reader_choice_file),
                "--port",
                str(kiosk_port),
            ],
        )
        children.wait_http("kiosk-agent", kiosk, world.kiosk_url, "the kiosk agent")
        print_guide(world, children)
        _announce_card(slot, "1", slot.insert(world.card_files["1"]), children)
        if not once:
            _interact(world, slot, children, stopping)
    except DemoStopped:
        pass
    except DemoFailed as failure:
        status = _fail(failure)
    finally:
        stopping.set()
        signals.ignore()
        slot.remove()
        children.stop_all()
    say("Demo stopped.")
    return status


def _commands(world: DemoWorld) -> str:
    keys = ", ".join(world.card_files)
    return (
        f"{keys}: put a card in; r: take it out; a, b: a provider's session; "
        "w: the phone takes the wallet offer; p: Demo Pay B asks the phone for over 20; q: quit"
    )


def _interact(
    world: DemoWorld, slot: CardSlot, children: Children, stopping: threading.Event
) -> None:
    while True:
        line = sys.stdin.readline()
        if not line:
            # No terminal (stdin closed, e.g. run in the background): serve until a signal.
            while True:
                time.sleep(3600)
        command = line.strip().lower()
        if command in world.card_files:
            _announce_card(slot, command, slot.insert(world.card_files[command]), children)
        elif command == "r":
            slot.remove()
            say(f"Reader {slot.reader} is empty")
        elif chosen := story(command):
            start_story(world, chosen, say, stopping)
        elif command == "w":
            take_offer(world, say)
        elif command == "p":
            prove_over_20(world, say)
        elif command == "q":
            return
        elif command:
            say(_commands(world))


def demo_command(
    data_dir: Annotated[
        Path, typer.Option(help="where the demo's world lives (wiped at start unless --keep)")
    ] = Path("var/demo"),
    service_port: Annotated[int, typer.Option(help="port of the Common-ID service")] = 8000,
    kiosk_port: Annotated[int, typer.Option(help="port of the kiosk agent")] = 8765,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="keep the world (test CA, cards, providers, API keys) of the last run "
            "in --data-dir instead of making a fresh one",
        ),
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="start everything, print the guide, then stop")
    ] = False,
) -> None:
    """Run the whole demo: service + virtual card in a PC/SC reader + kiosk."""
    status = run_demo(
        data_dir, service_port=service_port, kiosk_port=kiosk_port, once=once, keep=keep
    )
    if status:
        raise typer.Exit(status)
