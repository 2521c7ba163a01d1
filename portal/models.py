"""Imports every model so that Alembic and the tests see the whole schema."""
from portal.accounts.models import AdminUser, ApiToken, PortalUser
from portal.amapi.models import AmapiSettings, AmapiTask
from portal.audit.models import AuditEvent
from portal.enrollment.models import (Batch, Device, EnrollmentTicket, PendingEnrollment, QrCode,
                                      ZeroTouchEntry)
from portal.licensing.models import LicensePool
from portal.mail.models import OutboxMessage, SmtpSettings
from portal.preflight import PreflightRun
from portal.provisioning.models import StagedBatch
from portal.settings.models import (CompanionSettings, Localization, NetworkProfile, OtpPolicy,
                                    SignInSettings)
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = ["AdminUser", "AmapiSettings", "AmapiTask", "ApiToken", "AuditEvent", "Batch", "CompanionSettings", "Device",
           "EnrollmentTicket", "LicensePool", "Localization", "NetworkProfile", "OtpPolicy",
           "OutboxMessage", "PendingEnrollment", "PortalUser", "PreflightRun", "QrCode",
           "SignInSettings", "SmtpSettings", "StagedBatch", "WebhookDelivery", "WebhookEndpoint",
           "ZeroTouchEntry"]
