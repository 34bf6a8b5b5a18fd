"""Interventions during training: deficits (the data change), gates (no gradient for a group
of parameters) and lesions (a mode or unit held at zero), scheduled in windows [start, end)
that the jitted training loops read as arrays.

Pass a list of windows to :func:`dlnfusion.train` or :func:`dlnfusion.simulate`
(``interventions=[Gate("b", start=0, end=150)]``); build the degraded data with
:func:`delete`, :func:`blur` and :func:`dissociate`. For mini-batch training on images
(:func:`dlnfusion.fit`, windows in epochs) the deficit is a batch transform: :class:`ImageBlur`
or :class:`ViewDissociation`.
"""
from .deficits import DEFICITS, blur, delete, dissociate
from .batches import BATCH_DEFICITS, ImageBlur, ViewDissociation
from .schedule import (WINDOW_KINDS, Deficit, Gate, Lesion, Plan, Schedule, compile_schedule)

__all__ = ["Deficit", "Gate", "Lesion", "Plan", "Schedule", "compile_schedule",
           "delete", "blur", "dissociate", "DEFICITS", "WINDOW_KINDS", "ImageBlur",
           "ViewDissociation", "BATCH_DEFICITS"]
