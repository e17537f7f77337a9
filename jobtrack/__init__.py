"""jobtrack: track the progress of batch upload jobs from many workers at once.

>>> from jobtrack import JobTracker
>>> tracker = JobTracker("memory://")
>>> job = tracker.start("my-documents", total=2)
>>> tracker.record("my-documents", job.job_id, processed=2, successful=1, failed=1,
...                error="bad PDF").status.value
'completed'
"""

from .async_tracker import AsyncJobTracker
from .clock import Clock, utc_now
from .errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidDocument,
    InvalidName,
    InvalidUpdate,
    JobChanged,
    JobExists,
    JobExpired,
    JobFinished,
    JobNotFound,
    JobtrackError,
    JobtrackWarning,
    StoreCorrupt,
    StoreUnavailable,
    WaitTimeout,
)
from .model import (
    ErrorCount,
    FailedItem,
    JobStatus,
    NamespaceCounts,
    Page,
    Progress,
    Status,
    Update,
)
from .names import new_job_id, validate_name
from .rules import MAX_COUNT, MAX_ERROR_GROUPS, MAX_ERROR_LENGTH, MAX_ITEM_LENGTH
from .stores import (
    Features,
    FileStore,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
    StoreURL,
    open_store,
    register_store,
)
from .tracker import JobTracker

__version__ = "0.1.0"

__all__ = [
    "MAX_COUNT",
    "MAX_ERROR_GROUPS",
    "MAX_ERROR_LENGTH",
    "MAX_ITEM_LENGTH",
    "AsyncJobTracker",
    "Clock",
    "ConfigurationError",
    "ErrorCount",
    "FailedItem",
    "Features",
    "FileStore",
    "InvalidArgument",
    "InvalidDocument",
    "InvalidName",
    "InvalidUpdate",
    "JobChanged",
    "JobExists",
    "JobExpired",
    "JobFinished",
    "JobNotFound",
    "JobStatus",
    "JobTracker",
    "JobtrackError",
    "JobtrackWarning",
    "MemoryStore",
    "NamespaceCounts",
    "Page",
    "PostgresStore",
    "Progress",
    "RedisStore",
    "SQLiteStore",
    "Status",
    "Store",
    "StoreCorrupt",
    "StoreURL",
    "StoreUnavailable",
    "Update",
    "WaitTimeout",
    "new_job_id",
    "open_store",
    "register_store",
    "utc_now",
    "validate_name",
]
