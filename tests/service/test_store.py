"""The store on SQLite and PostgreSQL: migrations, encryption at rest, single use."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from commonid.store import accounts, persons, purge, sessions
from commonid.store.database import session_factory
from commonid.store.encryption import AttributeCipher, DecryptionError
from commonid.store.ids import hash_credential
from commonid.store.models import Attribute, Base, Provider

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_migrations_build_exactly_the_models(migrated_engine: sa.Engine) -> None:
    with migrated_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def _provider(
    db, cipher: AttributeCipher, name: str = "Provider A"
) -> accounts.NewCredential[Provider]:
    return accounts.add_provider(
        db,
        name=name,
        allowed_claims=["name", "birthdate"],
        reuse_max_age_seconds=3600,
        now=NOW,
        cipher=cipher,
        webhook_url="https://a.example/hooks",
        webhook_secret="whsec_c2VjcmV0",
    )


def test_provider_key_is_stored_only_as_hash_and_rotates(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        created = _provider(db, attribute_cipher)
    with make() as db:
        raw_rows = db.execute(sa.text("SELECT * FROM providers")).all()
        assert created.credential not in repr(raw_rows)
        assert "whsec_c2VjcmV0" not in repr(raw_rows)
        found = accounts.provider_by_api_key(db, created.credential)
        assert found is not None and found.id == created.account.id
        assert accounts.webhook_secret(found, attribute_cipher) == "whsec_c2VjcmV0"
    with make.begin() as db:
        provider = accounts.provider_by_name_or_id(db, "Provider A")
        new_key = accounts.rotate_provider_key(db, provider)
    with make() as db:
        assert accounts.provider_by_api_key(db, created.credential) is None
        assert accounts.provider_by_api_key(db, new_key).id == created.account.id


def test_attributes_are_encrypted_and_bound_to_their_row(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    facts = persons.CertificateFacts("sign", "1a2b", "CN=test", "ab" * 32, NOW)
    with make.begin() as db:
        alice, bob = persons.new_person(db, now=NOW), persons.new_person(db, now=NOW)
        for person, name in ((alice, "山田 花子"), (bob, "佐藤 太郎")):
            certificate = persons.record_certificate(
                db,
                person,
                facts
                if person is alice
                else persons.CertificateFacts("sign", "3c", "CN=test", "cd" * 32, NOW),
                now=NOW,
            )
            persons.store_attributes(
                db,
                person,
                {"name": name},
                source=certificate,
                verified_at=NOW,
                cipher=attribute_cipher,
            )
        alice_id, bob_id = alice.id, bob.id
    with make() as db:
        dump = repr(db.execute(sa.text("SELECT * FROM attributes")).all())
        assert "山田" not in dump and "山田".encode() not in dump.encode()
        assert persons.load_attributes(db, alice_id, attribute_cipher) == {"name": "山田 花子"}
    # Moving Bob's ciphertext into Alice's row must not decrypt as Alice's name.
    with make.begin() as db:
        bob_row = db.scalar(sa.select(Attribute).where(Attribute.person_id == bob_id))
        alice_row = db.scalar(sa.select(Attribute).where(Attribute.person_id == alice_id))
        alice_row.ciphertext = bob_row.ciphertext
    with make() as db, pytest.raises(DecryptionError):
        persons.load_attributes(db, alice_id, attribute_cipher)


def test_rotated_cipher_still_reads_old_rows(migrated_engine: sa.Engine) -> None:
    make = session_factory(migrated_engine)
    first_key = os.urandom(32)
    before_rotation = AttributeCipher({"k1": first_key}, "k1")
    with make.begin() as db:
        person = persons.new_person(db, now=NOW)
        certificate = persons.record_certificate(
            db, person, persons.CertificateFacts("sign", "1", "CN=t", "ef" * 32, NOW), now=NOW
        )
        persons.store_attributes(
            db,
            person,
            {"gender": "1"},
            source=certificate,
            verified_at=NOW,
            cipher=before_rotation,
        )
    after_rotation = AttributeCipher({"k1": first_key, "k2": os.urandom(32)}, "k2")
    with make() as db:
        assert persons.load_attributes(db, person.id, after_rotation) == {"gender": "1"}
    with make() as db, pytest.raises(DecryptionError):
        persons.load_attributes(db, person.id, AttributeCipher({"k2": os.urandom(32)}, "k2"))


def _open_session(make, provider_id: str) -> str:
    with make.begin() as db:
        session = sessions.create_session(
            db,
            provider_id=provider_id,
            mode="auth",
            claims=[],
            purpose="test",
            reuse=False,
            now=NOW,
            ttl=timedelta(minutes=5),
        )
        kiosk = accounts.add_kiosk(db, name=f"k-{session.id}", now=NOW).account
        assert sessions.record_consent(db, session.id, kiosk_id=kiosk.id, claims=[], now=NOW)
        return session.id


def test_concurrent_claims_let_exactly_one_response_in(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        provider_id = _provider(db, attribute_cipher).account.id
    session_id = _open_session(make, provider_id)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def respond() -> None:
        barrier.wait()
        with make.begin() as db:
            session = sessions.get_session(db, session_id)
            assert session is not None
            wins.append(
                sessions.complete_card_response(
                    db, session, status=sessions.SessionStatus.VERIFIED, now=NOW
                )
            )

    threads = [threading.Thread(target=respond) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_expired_session_cannot_be_consented_or_claimed(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        provider_id = _provider(db, attribute_cipher).account.id
    session_id = _open_session(make, provider_id)
    later = NOW + timedelta(minutes=6)
    with make.begin() as db:
        session = sessions.get_session(db, session_id)
        assert not sessions.complete_card_response(
            db, session, status=sessions.SessionStatus.VERIFIED, now=later
        )
        assert sessions.effective_status(session, later) is sessions.SessionStatus.EXPIRED


def test_purge_removes_sessions_past_retention_only(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        provider_id = _provider(db, attribute_cipher).account.id
    old_id = _open_session(make, provider_id)
    with make.begin() as db:
        recent = sessions.create_session(
            db,
            provider_id=provider_id,
            mode="auth",
            claims=[],
            purpose="p",
            reuse=False,
            now=NOW + timedelta(days=20),
            ttl=timedelta(minutes=5),
        )
        recent_id = recent.id
    policy = purge.RetentionPolicy(timedelta(days=10), timedelta(days=10), timedelta(hours=1))
    with make.begin() as db:
        report = purge.purge(db, policy, now=NOW + timedelta(days=21))
    assert report.sessions == 1
    with make() as db:
        assert sessions.get_session(db, old_id) is None
        assert sessions.get_session(db, recent_id) is not None


def test_concurrent_status_list_allocations_are_all_kept(migrated_engine: sa.Engine) -> None:
    from commonid.store import status_lists

    make = session_factory(migrated_engine)
    with make.begin() as db:
        status_lists.ensure_lists(db, base_url="http://svc.test", now=NOW)
    barrier = threading.Barrier(6)
    allocated: list[int] = []

    def issue() -> None:
        barrier.wait()
        with make.begin() as db:
            row, bits = status_lists.load_for_update(db, status_lists.REVOCATION_LIST_ID, now=NOW)
            index = bits.allocate()
            status_lists.save(row, bits, now=NOW)
        allocated.append(index)

    threads = [threading.Thread(target=issue) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(allocated)) == 6
    with make() as db:
        final = status_lists.get(db, status_lists.REVOCATION_LIST_ID)
    # Every allocation survived: each index can be revoked (revoke() refuses unallocated ones).
    for index in allocated:
        assert final.revoke(index)


def test_a_user_code_collision_draws_again_in_one_statement_each(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher, monkeypatch
) -> None:
    codes = iter(["AAAA1111", "AAAA1111", "BBBB2222"])
    monkeypatch.setattr(sessions, "new_user_code", lambda: next(codes))
    make = session_factory(migrated_engine)
    with make.begin() as db:
        provider = _provider(db, attribute_cipher).account
        first, second = (
            sessions.create_session(
                db,
                provider_id=provider.id,
                mode="auth",
                claims=["did"],
                purpose="p",
                reuse=False,
                now=NOW,
                ttl=timedelta(minutes=10),
            )
            for _ in range(2)
        )
        assert (first.user_code, second.user_code) == ("AAAA1111", "BBBB2222")
        assert sessions.get_session(db, second.id) == second  # as inserted
    with make() as db:
        stored = sessions.get_session(db, second.id)
        assert stored is not None and stored.status == "pending" and stored.kiosk_id is None
        assert stored.expires_at == NOW + timedelta(minutes=10)


def test_the_result_read_finds_the_caller_and_only_its_own_session(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        a = _provider(db, attribute_cipher)
        b = _provider(db, attribute_cipher, name="Provider B")
        a_id, a_key, b_key = a.account.id, a.credential, b.credential
    session_id = _open_session(make, a_id)

    with make() as db:
        mine = sessions.provider_and_session(db, hash_credential(a_key), session_id)
        theirs = sessions.provider_and_session(db, hash_credential(b_key), session_id)
        missing = sessions.provider_and_session(db, hash_credential(a_key), "ses_missing")
        unknown = sessions.provider_and_session(db, hash_credential("cid_pk_nobody"), session_id)
        loaded = sessions.get_session(db, session_id)

    assert mine is not None and mine[0].id == a_id and mine[1] is not None
    assert mine[1] == loaded
    assert theirs is not None and theirs[0].name == "Provider B" and theirs[1] is None
    assert missing is not None and missing[0].id == a_id and missing[1] is None
    assert unknown is None


def test_the_card_response_read_finds_the_kiosk_and_the_session_with_its_provider(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    make = session_factory(migrated_engine)
    with make.begin() as db:
        provider_id = _provider(db, attribute_cipher).account.id
        kiosk = accounts.add_kiosk(db, name="front desk", now=NOW)
        kiosk_id, credential = kiosk.account.id, kiosk.credential
    session_id = _open_session(make, provider_id)

    with make() as db:
        found = sessions.kiosk_and_session(db, hash_credential(credential), session_id)
        missing = sessions.kiosk_and_session(db, hash_credential(credential), "ses_missing")
        unknown = sessions.kiosk_and_session(db, hash_credential("cid_kiosk_x"), session_id)
        expected = sessions.session_and_provider(db, session_id)

    assert found is not None and found[0].id == kiosk_id and found[0].name == "front desk"
    assert found[1] == expected and found[1] is not None and found[1][1].id == provider_id
    assert missing is not None and missing[0].id == kiosk_id and missing[1] is None
    assert unknown is None


def test_a_database_error_does_not_carry_the_statements_values(
    migrated_engine: sa.Engine, attribute_cipher: AttributeCipher
) -> None:
    # What the API's fault handler logs: the statement, never its values.
    make = session_factory(migrated_engine)
    with make.begin() as db:
        _provider(db, attribute_cipher, name="Twice")
    with pytest.raises(sa.exc.IntegrityError) as raised, make.begin() as db:
        _provider(db, attribute_cipher, name="Twice")
    message = str(raised.value)
    assert "INSERT INTO providers" in message and "parameters hidden" in message
    # (PostgreSQL's own detail names the duplicate key; the other values stay out.)
    assert "https://a.example/hooks" not in message
