"""`commonid demo`: the whole product on one machine, for a booth or a first look.

It builds a fresh world under a data directory and runs it until Ctrl-C:

- a fresh J-LIS-profile test CA and three demo persons with card files
  (one ready for a first verification, one already verified by provider A so
  that provider B can reuse it, one whose signature certificate is revoked);
- the Common-ID service on SQLite, trusting only that test CA, with two demo
  providers and one kiosk registered;
- pcscd with the vpcd driver (started if not running) and the virtual card of
  the first person in reader "Virtual PCD 00 00";
- the kiosk agent on 127.0.0.1, owning that reader.

It prints the kiosk URL, each person's PIN and password, the providers' API
keys and a provider quick start. Lines typed on stdin swap cards: `1`, `2`, `3`
insert that person's card, `r` removes it, `q` quits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient, ProviderClient
from commonid.settings import Settings
from commonid.store.accounts import add_kiosk, add_provider
from commonid.store.database import create_engine, session_factory, upgrade
from commonid.store.encryption import AttributeCipher
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.profile import Gender
from jpki.testca import Hierarchy, IssuedPerson, PersonRecord
from jpki.transport import InProcessTransport

VPCD_PORT = 35963
VPCD_READER = "Virtual PCD 00 00"


@dataclass(frozen=True)
class DemoPerson:
    key: str
    story: str
    record: PersonRecord
    auth_pin: str
    sign_password: str


# Demo secrets are printed on purpose: they open virtual cards of fictional people.
DEMO_PERSONS = (
    DemoPerson(
        "1",
        "first verification (identity mode)",
        PersonRecord(
            name="山田\u3000太郎",
            birth_date=dt.date(1990, 4, 1),
            gender=Gender.MALE,
            address="東京都千代田区千代田一丁目1番1号",
            prefecture="東京都",
            municipality="千代田区",
        ),
        "1234",
        "ABC123",
    ),
    DemoPerson(
        "2",
        "already verified by Demo Pay A: reuse at Demo Pay B with the PIN only",
        PersonRecord(
            name="佐藤\u3000花子",
            birth_date=dt.date(1985, 12, 24),
            gender=Gender.FEMALE,
            address="大阪府大阪市北区中之島一丁目3番20号",
            prefecture="大阪府",
            municipality="大阪市",
        ),
        "5678",
        "HANAKO2024",
    ),
    DemoPerson(
        "3",
        "signature certificate revoked: verification is refused",
        PersonRecord(
            name="鈴木\u3000一郎",
            birth_date=dt.date(1972, 8, 15),
            gender=Gender.MALE,
            address="愛知県名古屋市中区三の丸三丁目1番1号",
            prefecture="愛知県",
            municipality="名古屋市",
        ),
        "2468",
        "ICHIRO99",
    ),
)

DEMO_PROVIDERS = (
    ("Demo Pay A", ["name", "birthdate", "gender", "address", "did", "credential"]),
    ("Demo Pay B", ["name", "birthdate", "address", "did"]),
)


@dataclass
class DemoWorld:
    data_dir: Path
    service_url: str
    kiosk_url: str
    provider_keys: dict[str, str]
    kiosk_credential: str
    card_files: dict[str, Path]


def _say(message: str = "") -> None:
    typer.echo(message)


def _card_file(directory: Path, person: IssuedPerson, demo: DemoPerson, h: Hierarchy) -> Path:
    from cryptography.hazmat.primitives.serialization import Encoding

    state = CardState.create(
        auth_private_key=person.auth_private_key,
        sign_private_key=person.sign_private_key,
        auth_certificate=person.auth_certificate.public_bytes(Encoding.DER),
        auth_ca_certificate=h.auth_ca_certificate.public_bytes(Encoding.DER),
        sign_certificate=person.sign_certificate.public_bytes(Encoding.DER),
        sign_ca_certificate=h.sign_ca_certificate.public_bytes(Encoding.DER),
        auth_pin=demo.auth_pin,
        sign_password=demo.sign_password,
    )
    path = directory / f"person{demo.key}.card.json"
    state.save(path)
    return path


def build_world(data_dir: Path, *, service_port: int, kiosk_port: int) -> DemoWorld:
    """A fresh test CA, cards, database, providers and kiosk under ``data_dir``."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    _say(f"Creating a fresh test CA and demo cards in {data_dir}")
    hierarchy = Hierarchy.init(data_dir / "testca")
    cards_dir = data_dir / "cards"
    cards_dir.mkdir()
    card_files: dict[str, Path] = {}
    for demo in DEMO_PERSONS:
        person = hierarchy.issue_person(demo.record)
        card_files[demo.key] = _card_file(cards_dir, person, demo, hierarchy)
        if demo.key == "3":
            import cryptography.x509 as x509

            hierarchy.revoke(
                person.sign_serial,
                purpose="sign",
                reason=x509.ReasonFlags.key_compromise,
                revoked_at=hierarchy.now() - dt.timedelta(minutes=1),
            )

    settings = service_settings(data_dir, service_port).with_generated_secrets()
    upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    cipher = AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id)
    now = dt.datetime.now(dt.UTC)
    provider_keys: dict[str, str] = {}
    with session_factory(engine).begin() as db:
        for name, claims in DEMO_PROVIDERS:
            created = add_provider(
                db,
                name=name,
                allowed_claims=claims,
                reuse_max_age_seconds=365 * 24 * 3600,
                now=now,
                cipher=cipher,
            )
            provider_keys[name] = created.credential
        kiosk_credential = add_kiosk(db, name="Demo booth kiosk", now=now).credential
    engine.dispose()
    (data_dir / "kiosk.credential").write_text(kiosk_credential)
    os.chmod(data_dir / "kiosk.credential", 0o600)
    return DemoWorld(
        data_dir=data_dir,
        service_url=f"http://127.0.0.1:{service_port}",
        kiosk_url=f"http://127.0.0.1:{kiosk_port}/",
        provider_keys=provider_keys,
        kiosk_credential=kiosk_credential,
        card_files=card_files,
    )


def service_settings(data_dir: Path, service_port: int) -> Settings:
    return Settings(
        data_dir=data_dir / "service",
        public_url=f"http://127.0.0.1:{service_port}",
        issuer_key_file=data_dir / "service" / "issuer-keys.json",
        trust_mode="test",
        test_hierarchy_dir=data_dir / "testca",
        revocation_mode="require",
    )


def service_environment(data_dir: Path, service_port: int) -> dict[str, str]:
    settings = service_settings(data_dir, service_port)
    return os.environ | {
        "COMMONID_DATA_DIR": str(settings.data_dir),
        "COMMONID_PUBLIC_URL": settings.public_url,
        "COMMONID_ISSUER_KEY_FILE": str(settings.issuer_key_file),
        "COMMONID_TRUST_MODE": settings.trust_mode,
        "COMMONID_TEST_HIERARCHY_DIR": str(settings.test_hierarchy_dir),
        "COMMONID_REVOCATION_MODE": settings.revocation_mode,
    }


def pre_verify_with_provider_a(world: DemoWorld, demo: DemoPerson) -> None:
    """Verify a person once at provider A, so the demo can show reuse at provider B.

    The card is driven in process here (no reader needed at set-up); the kiosk
    and provider sides go over HTTP to the running service, as in production.
    """
    card = VirtualMyNumberCard(CardState.load(world.card_files[demo.key]))
    jpki_card = JPKICard(InProcessTransport(card))
    with (
        ProviderClient(world.service_url, world.provider_keys["Demo Pay A"]) as provider,
        KioskClient(world.service_url, world.kiosk_credential) as kiosk,
    ):
        created = provider.create_session(
            mode="identity",
            claims=["name", "birthdate", "address"],
            purpose="デモ: 口座開設時の本人確認",
        )
        kiosk_session = kiosk.session(created.user_code)
        kiosk.consent(kiosk_session.id)
        answer = answer_challenge(
            jpki_card,
            created.challenge.to_be_signed,
            auth_pin=demo.auth_pin,
            sign_password=demo.sign_password,
        )
        kiosk.submit_card_answer(kiosk_session.id, answer)
        result = provider.wait_for_result(created.id, timeout=30)
    if result.status != "verified":
        raise RuntimeError(f"pre-verification of demo person {demo.key}: {result.status}")


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running_pcscd() -> Iterator[None]:
    """pcscd with the vpcd driver: the one running, or one started for the demo."""
    running = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0
    process = None
    if not running:
        _say("Starting pcscd (PC/SC daemon with the vpcd virtual reader)")
        process = subprocess.Popen(
            [shutil.which("pcscd") or "/usr/sbin/pcscd", "-f"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        yield
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


class CardSlot:
    """The emulator process holding one person's card in the vpcd reader."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.person: str | None = None

    def insert(self, person: str, card_file: Path) -> None:
        self.remove()
        self.process = subprocess.Popen(
            [_script("jpki-emulator"), "--card", str(card_file), "--port", str(VPCD_PORT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.person = person

    def remove(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        self.person = None


def _script(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def print_guide(world: DemoWorld) -> None:
    _say()
    _say("=" * 72)
    _say("Common-ID demo is running.")
    _say(f"  Kiosk page (open in a browser):  {world.kiosk_url}")
    _say(f"  Service API / OpenAPI:           {world.service_url}/docs")
    _say()
    _say("Demo persons (fictional; virtual cards):")
    for demo in DEMO_PERSONS:
        _say(
            f"  [{demo.key}] {demo.record.name}  PIN {demo.auth_pin}  "
            f"password {demo.sign_password}  -- {demo.story}"
        )
    _say()
    _say("Provider API keys:")
    for name, key in world.provider_keys.items():
        _say(f"  {name}: {key}")
    _say()
    _say("Provider quick start (in another terminal):")
    key_a = world.provider_keys["Demo Pay A"]
    key_b = world.provider_keys["Demo Pay B"]
    python = sys.executable
    _say(
        f"  {python} -m commonid.quickstart --service {world.service_url} "
        f"--api-key {key_a} --mode identity"
    )
    _say(
        f"  {python} -m commonid.quickstart --service {world.service_url} "
        f"--api-key {key_b} --mode auth --reuse   # with card 2: PIN only"
    )
    _say(
        f"  {python} -m commonid.quickstart --service {world.service_url} "
        f"--api-key {key_a} --mode identity --document consent   # + a consent signed by the card"
    )
    _say("It prints a user code: type it at the kiosk, then follow the screens.")
    _say()
    _say("Type 1, 2 or 3 + Enter to insert that person's card, r to remove it, q to quit.")
    _say("=" * 72)


def run_demo(data_dir: Path, *, service_port: int, kiosk_port: int, once: bool) -> None:
    world = build_world(data_dir, service_port=service_port, kiosk_port=kiosk_port)
    children: list[subprocess.Popen[bytes]] = []
    slot = CardSlot()
    with running_pcscd():
        try:
            _say(f"Starting the Common-ID service on {world.service_url} (SQLite)")
            service = subprocess.Popen(
                [_script("commonid"), "serve", "--host", "127.0.0.1", "--port", str(service_port)],
                env=service_environment(data_dir, service_port),
            )
            children.append(service)
            _wait_http(f"{world.service_url}/healthz", service, "the service")
            pre_verify_with_provider_a(world, DEMO_PERSONS[1])
            _say("Demo person 2 verified once at Demo Pay A (for the reuse story)")

            _say(f"Starting the kiosk agent on {world.kiosk_url}")
            kiosk = subprocess.Popen(
                [
                    _script("commonid-kiosk"),
                    "--service-url",
                    world.service_url,
                    "--kiosk-credential-file",
                    str(data_dir / "kiosk.credential"),
                    "--reader",
                    VPCD_READER,
                    "--port",
                    str(kiosk_port),
                ]
            )
            children.append(kiosk)
            _wait_http(world.kiosk_url, kiosk, "the kiosk agent")
            slot.insert("1", world.card_files["1"])
            print_guide(world)
            if once:
                return
            _interact(world, slot)
        finally:
            slot.remove()
            for child in reversed(children):
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()


def _interact(world: DemoWorld, slot: CardSlot) -> None:
    stop = False

    def _stop(*_args: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            break
        if not line:  # stdin closed (e.g. run in the background): keep serving
            try:
                while not stop:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            break
        command = line.strip().lower()
        if command in world.card_files:
            slot.insert(command, world.card_files[command])
            _say(f"card of demo person {command} inserted")
        elif command == "r":
            slot.remove()
            _say("card removed")
        elif command == "q":
            break
        elif command:
            _say("1, 2, 3: insert a card; r: remove it; q: quit")


def demo_command(
    data_dir: Annotated[
        Path, typer.Option(help="where the demo's fresh world lives (wiped at start)")
    ] = Path("var/demo"),
    service_port: Annotated[int, typer.Option(help="port of the Common-ID service")] = 8000,
    kiosk_port: Annotated[int, typer.Option(help="port of the kiosk agent")] = 8765,
    once: Annotated[
        bool, typer.Option("--once", help="start everything, print the guide, then stop")
    ] = False,
) -> None:
    """Run the whole demo: service + virtual card in a PC/SC reader + kiosk."""
    try:
        run_demo(data_dir, service_port=service_port, kiosk_port=kiosk_port, once=once)
    except KeyboardInterrupt:
        _say("\nDemo stopped.")
