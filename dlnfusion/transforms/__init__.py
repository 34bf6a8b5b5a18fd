"""Per-branch gradient methods as optax gradient transformations (modality balancing)."""
from .balancing import (WINDOWS, InfoRegState, OGMState, branch_scores, inforeg, ogm_ge)

__all__ = ["WINDOWS", "InfoRegState", "OGMState", "branch_scores", "inforeg", "ogm_ge"]
