"""Verification records (確認記録) under the Act on Prevention of Transfer of Criminal
Proceeds: what each completed identity verification and reuse leaves for the provider
to keep, export and, after the retention it declared, purge (docs/compliance.md)."""
