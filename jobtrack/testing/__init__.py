"""jobtrack's test kit: the store contract, a manual clock and the reference model.

* :class:`StoreContract`: subclass it and define a ``store`` fixture to run
  every check jobtrack's own stores pass against your store;
* :class:`ManualClock`: a clock that moves only when told to;
* :class:`RefJob`: SPEC section 3 written as plainly as possible, to compare
  a store with.

Import it only in tests: it needs pytest, hypothesis and freezegun.
"""

from .contract import StoreContract
from .reference import T0, ManualClock, RefJob, job_tuple

__all__ = ["T0", "ManualClock", "RefJob", "StoreContract", "job_tuple"]
