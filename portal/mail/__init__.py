"""Outgoing mail: the outbox written with the QR code, delivered by a worker."""
