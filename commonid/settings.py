"""The service's configuration: one settings class, read once at start-up.

Sources, strongest first: constructor arguments, ``COMMONID_*`` environment
variables, the TOML file named by ``COMMONID_CONFIG_FILE``, then defaults.
Secrets that are not configured (attribute encryption key, pairwise secret)
are generated on first start into ``<data_dir>/secrets.json`` (mode 0600) so a
fresh installation works without set-up and keeps its keys across restarts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_VARIABLE = "COMMONID_CONFIG_FILE"
SECRETS_FILE_NAME = "secrets.json"
AES_KEY_BYTES = 32
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="COMMONID_", extra="ignore")

    data_dir: Path = Path("data")
    # Empty means a SQLite file under data_dir.
    database_url: str = ""

    # AES-256-GCM keys for personal attributes at rest: key id -> base64url key.
    # The current key encrypts; every listed key can still decrypt (rotation).
    attribute_keys: dict[str, SecretStr] = Field(default_factory=dict)
    current_attribute_key_id: str = ""
    # Key of the pairwise subject id HMAC: providers cannot link ids without it.
    pairwise_secret: SecretStr | None = None
    # Where the attribute keys and pairwise secret not given above are kept (created on
    # first start); unset: <data_dir>/secrets.json. Several hosts of one service share
    # it (or the variables above): commonid.shared_keys refuses an instance that differs.
    secrets_file: Path | None = None

    # Where providers reach the service: status list URLs in credentials point here.
    public_url: str = "http://localhost:8000"
    issuer_key_file: Path | None = None
    # The OpenID Provider's ID token keys (ES256); unset: <data_dir>/oidc-signing-keys.json.
    # Every instance of one service shares this file, as it shares issuer_key_file.
    oidc_signing_key_file: Path | None = None
    # Wallet credentials (docs/wallet.md): the SD-JWT VC issuer's ES256 keys; unset:
    # <data_dir>/credential-issuer-keys.json, shared by every instance like the others.
    credential_issuer_key_file: Path | None = None
    # The current issuer key's X.509 chain (PEM, leaf first): sent as x5c when set.
    credential_issuer_certificate_chain: Path | None = None
    # How long a credential offer's pre-authorized code, a proof nonce and an OpenID4VP
    # request stay usable, and how many copies one credential request may ask for.
    credential_offer_ttl_seconds: int = Field(default=600, ge=60, le=24 * 3600)
    credential_nonce_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    credential_batch_size: int = Field(default=4, ge=1, le=20)
    presentation_request_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    # Where the OpenID sign-in page sends a person whose computer runs the kiosk agent.
    oidc_local_kiosk_url: str = "http://127.0.0.1:8765"
    # The audience of card challenges; empty means the issuer key's did:key.
    service_did: str = ""

    trust_mode: Literal["production", "test"] = "production"
    test_hierarchy_dir: Path | None = None
    # "require": no fresh revocation data means not valid; "soft-fail"; "off" (tests only).
    revocation_mode: Literal["require", "soft-fail", "off"] = "require"
    # Production CRL sources: trust anchor name (e.g. "auth_ca_2023") -> file path or URL.
    crl_sources: dict[str, str] = Field(default_factory=dict)
    crl_refresh_interval_seconds: int = 300
    # A platform operator's daily CRL may still be yesterday's for a while after its
    # nextUpdate (the switch-over window): accept it that long. 0: not at all.
    crl_switchover_grace_seconds: int = Field(default=0, ge=0, le=24 * 3600)
    # Revocation through a platform operator (プラットフォーム事業者): its OCSP endpoint for
    # same-day status, with client authentication, next to the direct CRL sources.
    operator_ocsp_url: str | None = None
    # Client authentication: a bearer token, or mutual TLS (certificate and key, PEM).
    operator_ocsp_token: SecretStr | None = None
    operator_client_certificate: Path | None = None
    operator_client_key: Path | None = None
    # The operator's certificate linkage records (old serial to new, after a renewal):
    # the base URL of <purpose>/<new serial hex>; same client authentication.
    operator_linkage_url: str | None = None
    # The CA that issued the operator's TLS certificate (default: the system's CAs).
    operator_ca_file: Path | None = None
    # Which source answers: the operator's OCSP first, then the CRL (its answer unusable
    # or the operator unreachable); the operator only; or the CRL only.
    revocation_order: Literal["ocsp-then-crl", "ocsp-only", "crl-only"] = "ocsp-then-crl"
    # The staleness accepted of an OCSP answer (its thisUpdate), even before nextUpdate.
    operator_ocsp_max_age_seconds: int = Field(default=24 * 3600, ge=60)

    # Signed documents (issue 9). With a timestamp authority (RFC 3161 over HTTP)
    # the kiosk signs PAdES B-T and the service accepts only a signature whose
    # timestamp validates under timestamp_roots (PEM or DER files); unset: B-B.
    timestamp_url: str | None = None
    timestamp_roots: list[Path] = Field(default_factory=list)
    # The PoC report's signing material (commonid.audit.report_signing): the
    # organisation's key and chain, its root and CRLs; default <data_dir>/report-signing.
    # The report is timestamped (B-T, B-LT) with the timestamp authority above.
    report_signing_dir: Path | None = None

    @property
    def effective_report_signing_dir(self) -> Path:
        return self.report_signing_dir or self.data_dir / "report-signing"

    # Admin endpoints are disabled while this is unset.
    admin_token: SecretStr | None = None

    # A rate of 0 would never refill (and a wait of infinity has no Retry-After):
    # refused at start rather than answered 500 at the first empty bucket.
    provider_rate_per_second: float = Field(default=50.0, gt=0)
    provider_rate_burst: int = Field(default=100, ge=1)
    kiosk_rate_per_second: float = Field(default=10.0, gt=0)
    kiosk_rate_burst: int = Field(default=30, ge=1)
    # Where the worker processes of one host keep shared rate-limit buckets. `commonid
    # serve --workers N` (N > 1) sets it to <data_dir>/rate-limits, emptied at start;
    # unset, each process limits on its own.
    rate_limit_dir: Path | None = None
    # Where the buckets live (docs/service.md, Rate limits). "file": on this host, as
    # above; several hosts behind a load balancer then each allow the full rate.
    # "database": in the service's PostgreSQL; "redis://..." (or rediss://, unix://):
    # in Redis (the `redis` extra). Either gives a caller one budget across all hosts.
    rate_limit_store: str = "file"
    # How long a request waits on a shared store before it is refused with 503.
    rate_limit_store_timeout_seconds: float = Field(default=1.0, gt=0)
    # Prefix of the bucket keys in Redis (several deployments may share one server).
    rate_limit_key_prefix: str = "commonid:ratelimit:"
    max_body_bytes: int = 64 * 1024
    # Signed PDFs (the kiosk's signed consent, /v1/documents/verify): the embedded font
    # subset grows with the distinct characters on the page (a one-page consent with a
    # 500-character purpose is ~80 kB unsigned), so they get their own, larger limit.
    max_document_bytes: int = 256 * 1024
    session_ttl_seconds: int = 300
    # How long `GET /v1/sessions/{id}?wait=` may hold a request (more is refused, 422).
    max_long_poll_seconds: int = Field(default=30, ge=1, le=60)
    # Threads per worker process that run blocking handler work (database, checks).
    # Few: more only queue on the database's locks and the GIL and lengthen every
    # request (docs/service.md, Performance). Raise it if handlers ever wait on the network.
    worker_threads: int = 2
    # The hot provider and kiosk endpoints (create, consent, card response, result) do
    # their short database work on the event loop itself: on a CPU-bound worker the hop
    # to a thread and back, and the GIL hand-offs it causes, cost more than the work
    # (docs/service.md, Performance). Turn off when the database is far enough away
    # that its round trips should not hold the worker's other requests.
    inline_handler_work: bool = True

    # Keep the raw certificate DER only when an operator explicitly asks for it.
    store_raw_certificates: bool = False
    retention_sessions_days: int = 30
    retention_webhook_deliveries_days: int = 30
    retention_idempotency_hours: int = 24

    # Background loops of each worker; 0 turns one off.
    webhook_dispatch_interval_seconds: float = 1.0
    webhook_max_attempts: int = 8
    webhook_initial_backoff_seconds: float = 1.0

    @field_validator("rate_limit_store")
    @classmethod
    def _known_rate_limit_store(cls, value: str) -> str:
        if value in ("file", "database") or value.startswith(REDIS_URL_SCHEMES):
            return value
        raise ValueError("rate_limit_store is 'file', 'database' or a redis:// URL")

    @model_validator(mode="after")
    def _operator_client_pair(self) -> Settings:
        if (self.operator_client_certificate is None) != (self.operator_client_key is None):
            raise ValueError(
                "operator_client_certificate and operator_client_key go together (mutual TLS)"
            )
        if self.revocation_order == "ocsp-only" and not self.operator_ocsp_url:
            raise ValueError("revocation_order 'ocsp-only' needs operator_ocsp_url")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'commonid.sqlite3'}"

    def attribute_key_bytes(self) -> dict[str, bytes]:
        return {
            kid: _b64url_decode(key.get_secret_value()) for kid, key in self.attribute_keys.items()
        }

    def with_generated_secrets(self) -> Settings:
        """These settings with missing secrets loaded from, or created in, data_dir."""
        if self.attribute_keys and self.current_attribute_key_id and self.pairwise_secret:
            return self
        stored = _load_or_create_secrets(self.secrets_file or self.data_dir / SECRETS_FILE_NAME)
        update: dict[str, object] = {}
        if not self.attribute_keys:
            update["attribute_keys"] = {
                kid: SecretStr(key) for kid, key in stored["attribute_keys"].items()
            }
            update["current_attribute_key_id"] = stored["current_attribute_key_id"]
        elif not self.current_attribute_key_id:
            update["current_attribute_key_id"] = sorted(self.attribute_keys)[-1]
        if self.pairwise_secret is None:
            update["pairwise_secret"] = SecretStr(stored["pairwise_secret"])
        return self.model_copy(update=update)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _load_or_create_secrets(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {
        "attribute_keys": {"k1": _b64url(secrets.token_bytes(AES_KEY_BYTES))},
        "current_attribute_key_id": "k1",
        "pairwise_secret": _b64url(secrets.token_bytes(32)),
    }
    # Written aside, then hard-linked into place: link() fails if another worker
    # won the race, and nobody ever reads a half-written file.
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(generated, handle)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return json.loads(path.read_text())
    finally:
        temporary.unlink()
    return generated
