"""Webhooks: HTTPS endpoints that receive signed events (Standard Webhooks), queued in the
transaction of the event and delivered by a worker with retries, like the mail outbox."""
