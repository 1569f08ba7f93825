"""SQLAlchemy models; importing this module registers every table on `Base.metadata`."""

from app.models.base import Base
from app.models.user import RefreshToken, Role, User

__all__ = ["Base", "RefreshToken", "Role", "User"]
