"""Quality metrics (placeholder interface until the evaluator lands; see issue 4)."""
from __future__ import annotations

from aigc.checkpoints import SHIPPED_DIR

EVALUATOR_PATH = SHIPPED_DIR / "evaluator.keras"


def evaluator_available() -> bool:
    """True when the shipped evaluator and its reference statistics exist."""
    return EVALUATOR_PATH.exists()
