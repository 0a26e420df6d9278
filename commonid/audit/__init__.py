"""Append-only verification log with RFC 9162 Merkle proofs and signed checkpoints.

Service flows log events with ``AuditLog.append(event_type, **fields)``; the
fields each event type may carry are fixed in commonid.audit.events.
"""

from commonid.audit.events import EVENT_TYPES, AuditFieldError
from commonid.audit.log import AuditLog

__all__ = ["EVENT_TYPES", "AuditFieldError", "AuditLog"]
