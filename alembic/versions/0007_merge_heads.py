"""Merge the feature branches (usage, feedback, KB, approvals) into one history.

Revision ID: 0007_merge_heads
Revises: 0003_usage, 0004_feedback, 0005_kb, 0006_approvals
"""

from collections.abc import Sequence

revision: str = "0007_merge_heads"
down_revision: str | Sequence[str] | None = (
    "0003_usage",
    "0004_feedback",
    "0005_kb",
    "0006_approvals",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: this revision only joins the branches."""


def downgrade() -> None:
    """Nothing to change: downgrading splits the history into its branches again."""
