"""Random update sequences, run on every store, checked against the reference model."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobtrack import InvalidUpdate, JobFinished, Store
from tests.conftest import TrackerFactory
from tests.helpers import T0, ManualClock, RefJob, job_tuple

NS = "prop"
_ids = itertools.count()

errors = st.none() | st.text(min_size=1, max_size=1200)
small = st.integers(0, 6)
record_ops = st.tuples(st.just("record"), small, small, small, errors)
abort_ops = st.tuples(st.just("abort"), st.text(min_size=1, max_size=1100))
clock_ops = st.tuples(st.just("clock"), st.integers(-5_000, 60_000))
operations = st.lists(
    st.one_of(record_ops, record_ops, record_ops, clock_ops, abort_ops), max_size=25
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(total=st.integers(0, 20), ops=operations)
def test_random_updates_match_the_reference_model(
    store: Store, tracker_factory: TrackerFactory, total: int, ops: list[tuple[object, ...]]
) -> None:
    clock = ManualClock()
    tracker = tracker_factory(store, clock=clock)
    job_id = f"p{next(_ids)}"
    tracker.start(NS, total, job_id=job_id)
    ref = RefJob(total, T0)
    for op in ops:
        if op[0] == "clock":
            clock.advance(milliseconds=op[1])  # type: ignore[arg-type]
            continue
        if op[0] == "abort":
            error = op[1]
            expected = ref.abort(error, clock.now)  # type: ignore[arg-type]
            args: dict[str, object] = {"error": error}
        else:
            _, p, s, f, error = op
            if error is not None and f == 0:
                error = None  # an error needs a failure (tested in test_bad_input)
            expected = ref.record(p, s, f, error, clock.now)  # type: ignore[arg-type]
            args = {"processed": p, "successful": s, "failed": f, "error": error}
        try:
            if op[0] == "abort":
                result = tracker.abort(NS, job_id, error)  # type: ignore[arg-type]
            else:
                result = tracker.record(NS, job_id, **args)  # type: ignore[arg-type]
        except JobFinished:
            assert expected == "finished", op
        except InvalidUpdate:
            assert expected == "invalid", op
        else:
            assert expected == "ok", op
            assert job_tuple(result) == ref.as_tuple()
        assert job_tuple(tracker.get(NS, job_id)) == ref.as_tuple()
    assert tracker.delete(NS, job_id)


def test_reference_model_sanity() -> None:
    ref = RefJob(2, T0)
    assert ref.record(1, 1, 0, None, T0 + dt.timedelta(seconds=1)) == "ok"
    assert ref.record(0, 2, 0, None, T0) == "invalid"
    assert ref.record(0, 0, 1, "x", T0) == "ok"
    assert ref.finished == T0 + dt.timedelta(seconds=1)
    assert ref.abort("y", T0) == "finished"
