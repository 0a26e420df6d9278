"""``commonid-kiosk``: start the kiosk agent on this machine's loopback interface."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from commonid_kiosk.settings import KioskSettings

CREDENTIAL_VARIABLE = "COMMONID_KIOSK_CREDENTIAL"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commonid-kiosk",
        description="Kiosk agent: owns the card reader and serves the kiosk page.",
    )
    parser.add_argument("--service-url", help="Common-ID service base URL")
    parser.add_argument(
        "--kiosk-credential-file",
        type=Path,
        help=f"file holding the kiosk credential (or set {CREDENTIAL_VARIABLE}; "
        "a credential on the command line would show in the process list)",
    )
    parser.add_argument("--reader", help="PC/SC reader name (default: the first holding a card)")
    parser.add_argument(
        "--reader-choice-file",
        type=Path,
        help="file where the reader chosen on the page is remembered (it wins over --reader)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--inactivity-timeout", type=float, help="seconds before the screen clears itself"
    )
    parser.add_argument(
        "--list-readers", action="store_true", help="print the PC/SC readers and exit"
    )
    return parser


def settings_from_arguments(arguments: argparse.Namespace) -> KioskSettings:
    overrides: dict[str, object] = {}
    if arguments.service_url:
        overrides["service_url"] = arguments.service_url
    if arguments.reader:
        overrides["reader"] = arguments.reader
    if arguments.reader_choice_file:
        overrides["reader_choice_file"] = arguments.reader_choice_file
    if arguments.inactivity_timeout:
        overrides["inactivity_timeout_seconds"] = arguments.inactivity_timeout
    if arguments.kiosk_credential_file:
        overrides["credential"] = SecretStr(arguments.kiosk_credential_file.read_text().strip())
    return KioskSettings(**overrides)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.list_readers:
        from jpki.transport import list_readers

        for name in list_readers():
            print(name)
        return 0
    if arguments.host not in ("127.0.0.1", "::1", "localhost") and not os.environ.get(
        "COMMONID_KIOSK_ALLOW_REMOTE"
    ):
        print(
            "commonid-kiosk: the agent drives the card reader and takes PINs; it listens on "
            "loopback only (set COMMONID_KIOSK_ALLOW_REMOTE=1 to override)",
            file=sys.stderr,
        )
        return 2
    settings = settings_from_arguments(arguments)
    if settings.credential is None:
        print(
            f"commonid-kiosk: no kiosk credential: set {CREDENTIAL_VARIABLE} "
            "or pass --kiosk-credential-file",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from commonid_kiosk.app import create_app

    print(f"Kiosk page: http://{arguments.host}:{arguments.port}/", flush=True)
    uvicorn.run(create_app(settings), host=arguments.host, port=arguments.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
