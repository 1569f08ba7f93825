"""SQLAlchemy models; importing this module registers every table on `Base.metadata`."""

from app.models.agent import (
    ACTIVE_RUN_STATUSES,
    FINAL_RUN_STATUSES,
    AgentRun,
    Conversation,
    Message,
    MultitaskStrategy,
    RunStatus,
    ToolExecution,
)
from app.models.api_key import ApiKey
from app.models.approval import (
    Approval,
    ApprovalEvent,
    ApprovalEventKind,
    ApprovalKind,
    ApprovalStatus,
    OutboxEmail,
)
from app.models.assistant import Assistant, AssistantVersion
from app.models.base import Base
from app.models.feedback import Feedback, FeedbackTag, Rating
from app.models.invite import Invite
from app.models.kb import (
    CollectionPermission,
    CollectionVisibility,
    DocumentStatus,
    KBCollection,
    KBCollectionMember,
    KBDocument,
    KBDocumentTag,
)
from app.models.tool_setting import ToolSetting
from app.models.usage import UsageDaily, UsageEvent, UsageKind, UsageStatus
from app.models.user import RefreshToken, Role, User

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "FINAL_RUN_STATUSES",
    "AgentRun",
    "ApiKey",
    "Approval",
    "ApprovalEvent",
    "ApprovalEventKind",
    "ApprovalKind",
    "ApprovalStatus",
    "Assistant",
    "AssistantVersion",
    "Base",
    "CollectionPermission",
    "CollectionVisibility",
    "Conversation",
    "DocumentStatus",
    "Feedback",
    "FeedbackTag",
    "Invite",
    "KBCollection",
    "KBCollectionMember",
    "KBDocument",
    "KBDocumentTag",
    "Message",
    "MultitaskStrategy",
    "OutboxEmail",
    "Rating",
    "RefreshToken",
    "Role",
    "RunStatus",
    "ToolExecution",
    "ToolSetting",
    "UsageDaily",
    "UsageEvent",
    "UsageKind",
    "UsageStatus",
    "User",
]
