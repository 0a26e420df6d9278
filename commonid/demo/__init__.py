"""`commonid demo`: the whole product on one machine, for a booth or a first look.

It builds a world under a data directory (fresh, or kept with ``--keep``) and
runs it until ``q`` or a signal:

- a J-LIS-profile test CA and three demo persons with card files (one ready
  for a first verification, one already verified by provider A so that
  provider B can reuse it, one whose signature certificate is revoked);
- the Common-ID service on SQLite, trusting only that test CA, with two demo
  providers and one kiosk registered;
- pcscd with the vpcd driver (started if not running) and the virtual card of
  the first person in reader "Virtual PCD 00 00";
- the kiosk agent on 127.0.0.1, using that reader.

Modules: :mod:`.world` (what is made), :mod:`.processes` (ports, signals,
children and their logs), :mod:`.stories` (provider sessions from the
terminal), :mod:`.command` (the command and its terminal guide).
"""

from commonid.demo.command import demo_command

__all__ = ["demo_command"]
