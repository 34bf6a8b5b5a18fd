"""Per-branch gradient methods as optax gradient transformations (modality balancing):
population-level training of linear networks (:func:`inforeg`, :func:`ogm_ge`) and mini-batch
training of classifiers with :func:`dlnfusion.fit` (:func:`inforeg_batches`,
:func:`ogm_ge_batches`), and added unimodal losses for comparison (:func:`unimodal_losses`,
:func:`unimodal_losses_batches`)."""
from .balancing import (TRACES, WINDOWS, InfoRegBatchState, InfoRegState, OGMState, branch_scores,
                        classifier_scores, inforeg, inforeg_batches, ogm_ge, ogm_ge_batches,
                        unimodal_losses, unimodal_losses_batches)

__all__ = ["WINDOWS", "InfoRegState", "InfoRegBatchState", "OGMState", "branch_scores",
           "classifier_scores", "inforeg", "inforeg_batches", "ogm_ge", "ogm_ge_batches",
           "unimodal_losses", "unimodal_losses_batches", "TRACES"]
