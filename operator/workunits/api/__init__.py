"""The resources' models: the one source of truth for the CRDs in ``crds/``."""

from workunits.api.workjob import WorkJob, WorkJobSpec, WorkJobStatus
from workunits.api.workunit import (
    AttemptRecord,
    Phase,
    RetryPolicy,
    WorkUnit,
    WorkUnitSpec,
    WorkUnitStatus,
)

__all__ = [
    "AttemptRecord",
    "Phase",
    "RetryPolicy",
    "WorkJob",
    "WorkJobSpec",
    "WorkJobStatus",
    "WorkUnit",
    "WorkUnitSpec",
    "WorkUnitStatus",
]
