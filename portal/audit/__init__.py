"""The audit log: every admin action and every enrollment attempt."""
