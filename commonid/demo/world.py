"""The demo's world: a test CA, three fictional persons with card files, a service
database with two providers and a kiosk, made fresh or kept from a previous run.

Nothing here runs a process: :mod:`commonid.demo.command` starts the service,
the card and the agent around the world built here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from commonid.audit.report_signing import create_test_organisation
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


# The marker of a complete world: written once set-up has finished (person 2
# verified), read by --keep. It holds the demo's API keys and kiosk credential,
# which are printed on the terminal anyway; mode 0600 like the credential file.
WORLD_FILE = "world.json"
REVIEWER_CREDENTIAL_FILE = "reviewer.credential"


def person(key: str) -> DemoPerson:
    return next(demo for demo in DEMO_PERSONS if demo.key == key)


@dataclass
class DemoWorld:
    data_dir: Path
    service_port: int
    kiosk_port: int
    provider_keys: dict[str, str]
    kiosk_credential: str
    created_at: str
    # The reviewer pages' credential (/reviewer/); empty in a world made before it existed.
    reviewer_credential: str = ""
    # --keep: the world was made by an earlier run, with this service port (its public URL).
    kept_from_service_port: int | None = None

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def kiosk_url(self) -> str:
        return f"http://127.0.0.1:{self.kiosk_port}/"

    @property
    def card_files(self) -> dict[str, Path]:
        return {demo.key: card_path(self.data_dir, demo.key) for demo in DEMO_PERSONS}

    @property
    def reader_choice_file(self) -> Path:
        """Where the agent remembers the reader staff chose (kept with the world)."""
        return self.data_dir / "kiosk" / "reader-choice.json"


def card_path(data_dir: Path, key: str) -> Path:
    return data_dir / "cards" / f"person{key}.card.json"


def _card_file(data_dir: Path, person: IssuedPerson, demo: DemoPerson, h: Hierarchy) -> Path:
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
    path = card_path(data_dir, demo.key)
    state.save(path)
    return path


def build_world(
    data_dir: Path, *, service_port: int, kiosk_port: int, say: Callable[[str], None]
) -> DemoWorld:
    """A fresh test CA, cards, database, providers and kiosk under ``data_dir`` (wiped first)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    say(f"Creating a fresh test CA and demo cards in {data_dir}")
    hierarchy = Hierarchy.init(data_dir / "testca")
    cards_dir = data_dir / "cards"
    cards_dir.mkdir()
    for demo in DEMO_PERSONS:
        person = hierarchy.issue_person(demo.record)
        _card_file(data_dir, person, demo, hierarchy)
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
    # The reviewer pages and a TEST organisation that signs the PoC report there.
    reviewer_credential = "rvw_" + secrets.token_urlsafe(24)
    (data_dir / REVIEWER_CREDENTIAL_FILE).write_text(reviewer_credential)
    os.chmod(data_dir / REVIEWER_CREDENTIAL_FILE, 0o600)
    create_test_organisation(settings.effective_report_signing_dir)
    return DemoWorld(
        data_dir=data_dir,
        service_port=service_port,
        kiosk_port=kiosk_port,
        provider_keys=provider_keys,
        kiosk_credential=kiosk_credential,
        created_at=now.isoformat(timespec="seconds"),
        reviewer_credential=reviewer_credential,
    )


def save_world(world: DemoWorld) -> None:
    """Mark the world complete, so that ``--keep`` can start it again as it is."""
    path = world.data_dir / WORLD_FILE
    record = {
        "created_at": world.created_at,
        "service_port": world.service_port,
        "provider_keys": world.provider_keys,
        "kiosk_credential": world.kiosk_credential,
        "reviewer_credential": world.reviewer_credential,
    }
    path.write_text(json.dumps(record, indent=2))
    os.chmod(path, 0o600)


def kept_world(data_dir: Path, *, service_port: int, kiosk_port: int) -> DemoWorld | None:
    """The complete world a previous run left in ``data_dir``, or None if there is none.

    A world whose set-up was interrupted has no world file and is not kept.
    """
    try:
        record = json.loads((data_dir / WORLD_FILE).read_text())
        world = DemoWorld(
            data_dir=data_dir,
            service_port=service_port,
            kiosk_port=kiosk_port,
            provider_keys=dict(record["provider_keys"]),
            kiosk_credential=str(record["kiosk_credential"]),
            created_at=str(record["created_at"]),
            reviewer_credential=str(record.get("reviewer_credential", "")),
            kept_from_service_port=int(record["service_port"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(path.exists() for path in world.card_files.values()):
        return None
    return world


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
    reviewer = data_dir / REVIEWER_CREDENTIAL_FILE
    if reviewer.exists():
        reviewing = {
            "COMMONID_AUDIT_REVIEWER_TOKEN": reviewer.read_text().strip(),
            # The reviewer pages count what a signed checkpoint covers: in the demo, a
            # verification shows there within seconds rather than the default 5 minutes.
            "COMMONID_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "10",
        }
    else:
        reviewing = {}
    return (
        os.environ
        | reviewing
        | {
            "COMMONID_DATA_DIR": str(settings.data_dir),
            "COMMONID_PUBLIC_URL": settings.public_url,
            "COMMONID_ISSUER_KEY_FILE": str(settings.issuer_key_file),
            "COMMONID_TRUST_MODE": settings.trust_mode,
            "COMMONID_TEST_HIERARCHY_DIR": str(settings.test_hierarchy_dir),
            "COMMONID_REVOCATION_MODE": settings.revocation_mode,
        }
    )


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
