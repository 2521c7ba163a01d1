"""Imports every model so that Alembic and the tests see the whole schema."""
from portal.accounts.models import AdminUser, PortalUser
from portal.audit.models import AuditEvent
from portal.enrollment.models import (Batch, Device, EnrollmentTicket, PendingEnrollment, QrCode,
                                      ZeroTouchEntry)
from portal.licensing.models import LicensePool
from portal.mail.models import OutboxMessage, SmtpSettings
from portal.preflight import PreflightRun
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from portal.settings.models import (CompanionSettings, Localization, NetworkProfile, OtpPolicy,
                                    SignInSettings)

__all__ = ["AdminUser", "Batch", "NetworkProfile", "PortalUser", "AuditEvent", "Device",
           "EnrollmentTicket", "PendingEnrollment", "ZeroTouchEntry", "LicensePool", "OutboxMessage", "SmtpSettings",
           "QrCode", "CompanionSettings", "Localization", "OtpPolicy", "SignInSettings",
           "PreflightRun", "WebhookDelivery", "WebhookEndpoint"]
