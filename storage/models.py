"""Every table, imported in one place so Alembic and tests see the whole schema."""

from storage.access import Token, User
from storage.audit import AuditEntry
from storage.base import Base
from storage.customers import Customer, CustomerExternalId, CustomerIdentifier
from storage.interactions import Attachment, Interaction, Participant, Tag
from storage.jobs import Job
from storage.marketing import MarketingBan, MarketingBanChange, MarketingBanIdentifier
from storage.rights import BlobDeletion, CustomerCorrection, IndexPurge, LegalHold, SubjectRequest
from storage.transcripts import Transcript, TranscriptSegment
from storage.webhooks import OutboxEvent, WebhookDelivery, WebhookSubscription

__all__ = [
    "Attachment",
    "AuditEntry",
    "Base",
    "BlobDeletion",
    "Customer",
    "CustomerCorrection",
    "CustomerExternalId",
    "CustomerIdentifier",
    "IndexPurge",
    "Interaction",
    "Job",
    "LegalHold",
    "MarketingBan",
    "MarketingBanChange",
    "MarketingBanIdentifier",
    "OutboxEvent",
    "Participant",
    "SubjectRequest",
    "Tag",
    "Token",
    "Transcript",
    "TranscriptSegment",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
