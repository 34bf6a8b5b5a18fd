"""Exact reduced simulators: runners that train a network on a few numbers instead of its
weights.

A reduced simulator integrates or iterates the dynamics of a network written in a small set of
variables that the training provably keeps closed — the per-mode strengths of balanced aligned
pathways, the Gram matrix of each branch's weight vectors, the norms of balanced aligned chains,
the signal subspaces of the initial weights — so that it reproduces the training of the full
network (to float64 round-off where the reduction is exact) at a cost independent of its width.
It is a runner like :func:`dlnfusion.train`: it takes a learning rate and a step budget, and it
returns a :class:`~dlnfusion.results.Run` (a time axis, a status per run, the batch in front).
Closed forms that need no time loop live in :mod:`dlnfusion.theory`; the methods' rules the
simulators apply (OGM's coefficient, InfoReg's window and prefactor, the Fisher trace) are
those of :mod:`dlnfusion.rules`, the ones :mod:`dlnfusion.transforms` applies to the network.

* :func:`reduced_pathways`, :func:`pathway_portrait`: parallel deep linear pathways (Kleinman
  et al. 2023), gradient descent exactly or gradient flow numerically, with gates and lesions.
* :func:`balancing_two_layer`, :func:`balancing_deep`, :func:`ogm_ge_two_layer`: joint
  training, OGM, OGM-GE and InfoReg on fusion networks with scalar modalities.
* :func:`fisher_late_fusion`: the information amount Tr F_m(t) along the mode solution.
* :func:`reduce_network`, :func:`train_reduced`: any linear fusion network projected on the
  signal subspaces of its initial weights and trained like the runs it predicts (measured by
  :func:`dlnfusion.compare.predict_unimodal_phase`).
"""
from .balancing import (METHODS as BALANCING_METHODS, OGM_FROZEN, BalancedRun, NoisyRun,
                        balancing_deep, balancing_two_layer, ogm_ge_two_layer)
from .fisher import FisherRun, fisher_late_fusion
from .network import reduce_network, train_reduced
from .pathways import PathwayPortrait, PathwayRun, pathway_portrait, reduced_pathways

__all__ = [
    "PathwayRun", "reduced_pathways", "PathwayPortrait", "pathway_portrait",
    "BALANCING_METHODS", "OGM_FROZEN", "BalancedRun", "NoisyRun", "balancing_two_layer",
    "balancing_deep", "ogm_ge_two_layer",
    "FisherRun", "fisher_late_fusion",
    "reduce_network", "train_reduced",
]
