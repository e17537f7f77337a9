"""Each Redis operation, described once: its keys, script, arguments and reply decoding.

Nothing here does I/O. :class:`Commands` turns a store call into
:class:`Call` values; the sync and async runners (``runner.py``) send them
and hand each reply to its call's ``decode``. Multi-step operations (a
listing, a pipelined batch with its NOSCRIPT reload) are generators that
yield what to send and receive what came back, so one definition serves
both runners.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import hashlib
import importlib.resources
import logging
import math
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import attrs

from ...clock import from_ms, to_ms
from ...errors import (
    ConfigurationError,
    InvalidUpdate,
    JobChanged,
    JobExists,
    JobFinished,
    JobNotFound,
    JobtrackError,
    StoreCorrupt,
    StoreUnavailable,
)
from ...model import ErrorCount, FailedItem, JobStatus, NamespaceCounts, Status
from ...names import is_valid_name, validate_name
from ...rules import RATE_TAU_MS, Delta
from ..protocol import (
    COMPLETED,
    RUNNING,
    STALLED,
    ListKey,
    entry_differs,
    has_status,
    stalled_before,
)
from .client import PREFIX_PATTERN, import_redis

__all__ = [
    "SCRIPTS",
    "Call",
    "Commands",
    "Prepacked",
    "Script",
    "Steps",
    "driver_error",
    "pipelined",
    "raise_errors",
    "resp_args",
]

logger = logging.getLogger("jobtrack.stores.redis")

_RUNNING = Status.RUNNING
_COMPLETED = Status.COMPLETED
_PREFIX_RE = re.compile(PREFIX_PATTERN)
_KEY_CACHE_SIZE = 4096
_PURGE_BATCH = 500
_BUILD_BATCH = 500
_MOST_AHEAD = 1000
"""A listing that meets index entries whose jobs are gone reads twice as many entries each
round, up to this many (or its page): each such entry is read once, then removed."""
_REMEMBER_AT_START = 400 * 24 * 3600 * 1000
"""The TTL slack of a job completed at once (total 0): ``create`` gets no ``remember_expired``,
so its keys live ``retain`` + 400 days (``purge`` removes it by the tracker's setting)."""
_INDEXES = {None: "jobs", RUNNING: "running", COMPLETED: "done", STALLED: "beat",
            "expiring": "expiring"}  # fmt: skip
"""A namespace's indexes, in the order the scripts take them (KEYS[5..9])."""


@attrs.frozen
class Script:
    """A Lua script of the package (``lua/<name>.lua``) and its SHA1."""

    name: str
    text: str
    sha: str

    @classmethod
    def read(cls, name: str, *using: str) -> Script:
        """Load ``lua/<name>.lua`` with :mod:`importlib.resources`, after the files it uses."""
        folder = importlib.resources.files(__package__) / "lua"
        text = "".join(
            (folder / f"{part}.lua").read_text(encoding="utf-8") for part in (*using, name)
        )
        return cls(name, text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


SCRIPTS = {
    **{name: Script.read(name, "lifetime") for name in ("create", "update", "delete", "tidy")},
    **{name: Script.read(name) for name in ("failed", "errors", "page")},
}
"""The scripts; those that add or remove jobs start with ``lifetime.lua`` (the namespace's
keys live as long as its longest-lived job)."""
_UPDATE = SCRIPTS["update"]
if f"local TAU = {RATE_TAU_MS} " not in _UPDATE.text:  # one time constant, in Python and in Lua
    raise ImportError("update.lua's TAU is not jobtrack.rules.RATE_TAU_MS")


class Call(NamedTuple):  # a tuple: one is made per update, and attrs would cost a microsecond
    """One command to send, and how to turn its reply into the operation's result.

    ``args`` is the command as sent (``EVALSHA sha numkeys keys... argv...``
    for a script). ``decode`` raises the operation's own errors (``JobNotFound``...).
    """

    args: tuple[Any, ...]
    decode: Callable[[Any], Any]
    script: Script | None = None
    head: tuple[bytes, int] | None = None  # the first n args in RESP, packed once per job

    def resp(self) -> bytes:
        """The whole command in RESP, packing only what follows ``head`` (which it needs)."""
        assert self.head is not None
        packed, n = self.head
        return b"*%d\r\n%s%s" % (len(self.args), packed, resp_args(self.args[n:]))


T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Steps = Generator["Sequence[Call] | Script", Any, T]
"""What a multi-step operation is: it yields calls to pipeline (or a script to
load, on every primary of a cluster), is sent back the raw replies, and returns its result."""


def driver_error(exc: BaseException) -> JobtrackError:
    """The one mapping of a redis-py error to jobtrack's.

    A key that is not a job's is ``StoreCorrupt``; anything else is
    ``StoreUnavailable`` (retryable).
    """
    if "WRONGTYPE" in str(exc) or "user_script" in str(exc):
        return StoreCorrupt(f"Redis holds something that is not a job: {exc}")
    if "DB index is out of range" in str(exc):  # the server has fewer databases: not retryable
        return ConfigurationError(f"the Redis URL's database does not exist there: {exc}")
    return StoreUnavailable(f"Redis call failed: {type(exc).__name__}: {exc}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _corrupt(what: str, reply: object) -> StoreCorrupt:
    return StoreCorrupt(f"unexpected reply from Redis to {what}: {repr(reply)[:200]}")


class Commands:
    """The calls of every store operation under one key *prefix*.

    Keys (see ``docs/redis.md``), all with the namespace as hash tag so a
    script touches one Cluster slot::

        <prefix>:{<namespace>}:job:<job_id>     hash: t p s f e st up fin q
        <prefix>:{<namespace>}:jobs             sorted set: job_id scored by started ms
        <prefix>:{<namespace>}:items:<job_id>   hash: item -> state (see update.lua)
        <prefix>:{<namespace>}:failed:<job_id>  sorted set: failed items by position
        <prefix>:{<namespace>}:errors:<job_id>  hash: message -> "count first last"
        <prefix>:{<namespace>}:indexed          string: status indexes built; how long
                                                the namespace's keys live (lifetime.lua)

    Nothing here keeps anything per namespace: the only caches are of recently
    used jobs' keys, a few thousand at most.
    """

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
            raise ConfigurationError(
                f"invalid Redis key prefix {prefix!r}: use 1-64 of A-Z a-z 0-9 _ . : -"
            )
        self.prefix = prefix
        self._job_keys: dict[tuple[str, str], str] = {}
        self._update_heads: dict[tuple[str, str], tuple[tuple[Any, ...], tuple[bytes, int]]] = {}

    def job_key(self, namespace: str, job_id: str) -> str:
        """The key of a job's hash (names are re-checked: no key outside the prefix).

        Keys of recently used jobs are remembered (a few thousand): workers
        update the same jobs over and over.
        """
        try:
            key = self._job_keys.get((namespace, job_id))
        except TypeError:  # unhashable, so not a name: validate_name says why
            key = None
        if key is None:
            validate_name(namespace, "namespace")
            validate_name(job_id, "job id")
            key = _remember(
                self._job_keys, (namespace, job_id), f"{self.prefix}:{{{namespace}}}:job:{job_id}"
            )
        return key

    def item_keys(self, namespace: str, job_id: str) -> tuple[str, str, str]:
        """The keys of a job's items, failed items and error counts (the job's slot)."""
        tail = self.job_key(namespace, job_id).rpartition(":job:")
        return (
            f"{tail[0]}:items:{tail[2]}",
            f"{tail[0]}:failed:{tail[2]}",
            f"{tail[0]}:errors:{tail[2]}",
        )

    def namespace_key(self, namespace: str, name: str) -> str:
        """The key *name* of a namespace (its hash tag; the name is re-checked)."""
        validate_name(namespace, "namespace")
        return f"{self.prefix}:{{{namespace}}}:{name}"

    def index_key(self, namespace: str, status: str | None = None) -> str:
        """The key of a namespace's index of every job, or of one *status* (see the class)."""
        return self.namespace_key(namespace, _INDEXES[status])

    def index_keys(self, namespace: str) -> tuple[str, ...]:
        """The namespace's five indexes: jobs, running, done, beat, expiring."""
        return tuple(self.namespace_key(namespace, name) for name in _INDEXES.values())

    @property
    def expiring_pattern(self) -> str:
        """A ``SCAN MATCH`` pattern of every namespace's expiring index."""
        return f"{self.prefix}:{{*}}:expiring"

    def purge(self, keys: Iterable[Any], expired_before: int) -> Steps[int]:
        """:meth:`expired` of each namespace whose expiring index a scan found (*keys*).

        Only valid names are taken, in order.
        """
        head = f"{self.prefix}:{{"
        found = set()
        for key in keys:
            text = _text(key)
            if text.startswith(head) and text.endswith("}:expiring"):
                name = text[len(head) : -len("}:expiring")]
                if is_valid_name(name):
                    found.add(name)
        gone = 0
        for namespace in sorted(found):
            gone += yield from self.expired(namespace, expired_before)
        return gone

    def keys(self, namespace: str, job_id: str) -> tuple[str, ...]:
        """The keys every script of a job is given: the job's four, the namespace's six."""
        return (
            self.job_key(namespace, job_id),
            *self.item_keys(namespace, job_id),
            *self.index_keys(namespace),
            self._marker(namespace),
        )

    # -- one description per operation ----------------------------------------

    def eviction_policy(self) -> Call:
        """``CONFIG GET maxmemory-policy`` (None where the command is refused)."""

        def decode(reply: Any) -> str | None:
            if isinstance(reply, list):  # RESP2 without the client's callbacks
                reply = dict(zip(reply[::2], reply[1::2], strict=False))
            return None if not reply else _text(next(iter(dict(reply).values())))

        # one word, "CONFIG GET", as redis-py's own config_get sends it: redis-py 5.x's async
        # cluster client cannot route CONFIG with GET as an argument (a ValueError)
        return Call(("CONFIG GET", "maxmemory-policy"), decode)

    def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> Steps[None]:
        """``create.lua``: the job's hash and index entry appear together.

        A job of that id that expired at or before *forgotten_before* is
        forgotten: it is replaced, with its items and error counts. Then, for
        a namespace's first job (the script says so), :meth:`_listed`.
        """
        ns, jid = job.namespace_name, job.job_id
        started = to_ms(job.started_at)
        expires: Any = ""
        ttl: Any = ""
        if job.expires_at is not None:  # completed at once: kept as an update would
            expires = to_ms(job.expires_at)
            ttl = expires - started + _REMEMBER_AT_START
            if ttl >= 9 * 10**15:
                ttl = ""

        def decode(created: Any) -> bool:
            if created == 0:
                raise JobExists(ns, jid)
            if created not in (1, 2):
                raise _corrupt("a create", created)
            return bool(created == 2)

        forgotten = "" if forgotten_before is None else to_ms(forgotten_before)
        argv = (jid, job.total, started, expires, ttl, forgotten)
        (new,) = yield from pipelined([_script("create", self.keys(ns, jid), argv, decode)])
        if raise_errors(new):
            yield from self._listed(ns)

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> Call:
        """``update.lua``: one round trip, atomic on the server."""
        retain = delta.retain
        ms = to_ms(now)
        if (
            delta.item is None
            and delta.error is None
            and not delta.more
            and delta.if_updated is None
        ):  # counters only (aborts carry an error): what the script needs, no more
            if retain is None:
                argv: tuple[Any, ...] = (ms, delta.processed, delta.successful, delta.failed)
            else:
                argv = (ms, delta.processed, delta.successful, delta.failed, *retain)
        else:
            argv = (
                ms, delta.processed, delta.successful, delta.failed,
                *(("", "") if retain is None else retain),
                delta.error or "", "1" if delta.abort else "0", delta.more,
                *(("", "") if delta.item is None else (item_field(delta.item), delta.item)),
                "" if delta.if_updated is None else delta.if_updated,
            )  # fmt: skip
        try:  # EVALSHA sha 10 keys...: the same for every update of a job, packed once
            head, packed = self._update_heads[namespace, job_id]
        except (KeyError, TypeError):  # new, or not even hashable: keys() checks the names
            keys = self.keys(namespace, job_id)
            head = ("EVALSHA", _UPDATE.sha, len(keys), *keys)
            packed = (resp_args(head), len(head))
            _remember(self._update_heads, (namespace, job_id), (head, packed))
        return Call(
            head + argv,
            lambda reply: job_from_update_reply(namespace, job_id, reply),
            _UPDATE,
            head=packed,
        )

    def failed_items(self, namespace: str, job_id: str, limit: int, after: int | None) -> Call:
        """``failed.lua``: a page of failed items and their positions (None: no job)."""
        items, failed, _ = self.item_keys(namespace, job_id)
        keys = (self.job_key(namespace, job_id), items, failed)
        argv = ("" if after is None else after, limit)
        return _script("failed", keys, argv, _failed_page)

    def errors(self, namespace: str, job_id: str) -> Call:
        """``errors.lua``: the job's error counts (None: no job)."""
        keys = (self.job_key(namespace, job_id), self.item_keys(namespace, job_id)[2])
        return _script("errors", keys, (), _error_groups)

    def get(self, namespace: str, job_id: str) -> Call:
        """One ``HGETALL`` of the job's hash."""
        return Call(
            ("HGETALL", self.job_key(namespace, job_id)),
            lambda fields: job_from_hash(namespace, job_id, fields),
        )

    def delete(self, namespace: str, job_id: str) -> Steps[bool]:
        """``delete.lua``: the hash and its index entry go together.

        Then, if it was the namespace's last job, :meth:`_unlisted`.
        """
        (deleted,) = yield from pipelined([self._delete(namespace, job_id, "")])
        existed, emptied = raise_errors(deleted)
        if emptied:
            yield from self._unlisted(namespace)
        return bool(existed)

    def _delete(self, namespace: str, job_id: str, expired_before: int | str) -> Call:
        """``delete.lua`` (of a job that expired at or before *expired_before* ms, if given).

        Its result: (whether the job existed, whether the namespace is left empty).
        """

        def decode(deleted: Any) -> tuple[bool, bool]:
            if deleted not in (0, 1, 2, 3):
                raise _corrupt("a delete", deleted)
            return bool(deleted % 2), deleted >= 2

        return _script("delete", self.keys(namespace, job_id), (job_id, expired_before), decode)

    # -- the list of namespaces (see docs/redis.md) --------------------------

    @property
    def names_key(self) -> str:
        """The sorted set of the namespaces that hold jobs (scores 0: ordered by name).

        In a slot of its own (its hash tag cannot be a namespace's): no script of a
        namespace writes it; the client does, in two steps (:meth:`_listed`,
        :meth:`_unlisted`).
        """
        return f"{self.prefix}:{{:namespaces}}:names"

    def _listed(self, namespace: str) -> Steps[None]:
        """Enter a namespace whose first job ``create.lua`` just made (after it: see the docs).

        Then look at two namespaces of the list at random and take out those
        whose jobs are all gone (by TTL, say): the list stays as long as the
        namespaces that hold jobs, give or take the ones not met yet.
        """
        (added, others) = yield from pipelined([
            Call(("ZADD", self.names_key, 0, namespace), raise_errors),
            Call(("ZRANDMEMBER", self.names_key, 2), _names),
        ])  # fmt: skip
        raise_errors(added)
        others = [name for name in raise_errors(others) if name != namespace]
        held = yield from pipelined([self._holds(name) for name in others])
        for name, holds in zip(others, held, strict=True):
            if not raise_errors(holds):
                yield from self._unlisted(name)

    def _holds(self, namespace: str) -> Call:
        """Whether the namespace holds a job (its index of every job exists)."""
        return Call(("EXISTS", self.index_key(namespace)), bool)

    def _unlisted(self, namespace: str) -> Steps[None]:
        """Take out a namespace found empty; enter it again if a job started meanwhile.

        A start that made it anew between the two steps either entered it
        after this removal or is seen by the check after it: concurrent
        starts and deletions never leave a namespace that holds jobs out.
        """
        (removed,) = yield from pipelined([Call(("ZREM", self.names_key, namespace), int)])
        raise_errors(removed)
        (holds,) = yield from pipelined([self._holds(namespace)])
        if raise_errors(holds):
            (added,) = yield from pipelined([Call(("ZADD", self.names_key, 0, namespace), int)])
            raise_errors(added)

    def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> Steps[builtins.list[NamespaceCounts]]:
        """A page of the list of namespaces (``ZRANGEBYLEX``), then each one's counts.

        Two round trips (the counts pipelined, by node on a cluster), each
        count a ``ZCARD`` or a ``ZCOUNT`` of an index: O(limit log n). A
        namespace whose jobs went by TTL reads as zero counts.
        """
        start = "-" if after is None else f"({after}"
        (names,) = yield from pipelined(
            [Call(("ZRANGEBYLEX", self.names_key, start, "+", "LIMIT", 0, limit), _names)]
        )
        names = raise_errors(names)
        calls = []
        for name in names:
            if not is_valid_name(name):
                raise StoreCorrupt(f"the list of namespaces holds {name!r}: not a name")
            calls += [
                Call(("ZCARD", self.index_key(name, RUNNING)), int),
                Call(("ZCOUNT", self.index_key(name, STALLED), "-inf", f"({beat or 0}"), int),
                Call(("ZCARD", self.index_key(name, COMPLETED)), int),
                Call(("ZCOUNT", self.index_key(name, "expiring"), "-inf", now), int),
            ]
        counts = [raise_errors(n) for n in (yield from pipelined(calls))]
        return [
            NamespaceCounts(
                name,
                counts[4 * i],
                None if beat is None else counts[4 * i + 1],
                counts[4 * i + 2] - counts[4 * i + 3],
            )
            for i, name in enumerate(names)
        ]

    def _index_page(
        self, keys: Sequence[str], limit: int, before: ListKey | None
    ) -> Steps[builtins.list[ListKey] | None]:
        """Up to *limit* entries of the index ``keys[0]`` below *before*, newest first.

        ``page.lua`` reads them and at most ~log2(ties) entries more, whatever
        the index holds. With the namespace's marker and index of every job as
        ``keys[1:]``: None if its status indexes are still to be built.
        """
        argv = (limit,) if before is None else (limit, *before)
        (entries,) = yield from pipelined([_script("page", keys, argv, _index_reply)])
        entries = raise_errors(entries)
        if entries is None:
            return None
        if before is not None:
            entries = [entry for entry in entries if entry < before]
        entries.sort(reverse=True)
        return entries[:limit]  # type: ignore[no-any-return]

    def list_status(
        self,
        namespace: str,
        status: str | None,
        limit: int,
        before: ListKey | None,
        cutoff: int | None,
    ) -> Steps[builtins.list[JobStatus]]:
        """A page (of every job: *status* None): index entries, then their jobs, until *limit*.

        An entry whose job is gone (expired, evicted, deleted by hand) or not
        of that status any more is skipped and set right (``tidy.lua``), and
        the page goes on: it never ends early, and reads twice as far each
        round that met such entries (up to ``_MOST_AHEAD``). A namespace
        written by jobtrack 0.1 has no status indexes: ``page.lua`` says so
        (reading only), and they are built from its index of every job first.
        Nothing is written for a namespace that has no jobs.
        """
        index = self.index_key(namespace, status)
        keys: tuple[str, ...] = (index,)
        if status is not None:
            keys = (index, self._marker(namespace), self.index_key(namespace))
        if cutoff is not None:  # stalled
            before = stalled_before(before, cutoff)
        jobs: builtins.list[JobStatus] = []
        ahead = limit
        while len(jobs) < limit:
            entries = yield from self._index_page(keys, ahead, before)
            if entries is None:  # a namespace of jobtrack 0.1
                yield from self._build_indexes(namespace)
                keys = (index,)
                continue
            rows = yield from pipelined([self.get(namespace, jid) for _, jid in entries])
            stale = []
            for entry, row in zip(entries, rows, strict=True):
                if isinstance(row, StoreCorrupt):
                    logger.warning("listing skips a corrupt job: %s", row)
                elif isinstance(row, JobtrackError):
                    raise row
                else:
                    if row is not None and (status is None or has_status(row, status, cutoff)):
                        jobs.append(row)
                    if row is None or entry_differs(row, status, entry):
                        stale.append(entry[1])  # (kept: its entry moves)
            if stale:
                yield from pipelined([self._tidy(namespace, stale)])
            if len(entries) < ahead:  # the index has no more
                break
            before = entries[-1]
            if stale:
                ahead = min(2 * ahead, max(limit, _MOST_AHEAD))
        return jobs[:limit]

    def _tidy(self, namespace: str, job_ids: Sequence[str], *, built: bool = False) -> Call:
        """``tidy.lua``: set the index entries of *job_ids* right from their hashes.

        *built*: the last step of building the status indexes of a namespace
        of jobtrack 0.1, which then gets its marker (if it still has jobs).
        """
        keys = [
            *self.index_keys(namespace),
            self._marker(namespace),
            *(self.job_key(namespace, j) for j in job_ids),
        ]
        return _script("tidy", keys, ("1" if built else "", *job_ids), raise_errors)

    def _marker(self, namespace: str) -> str:
        """The key saying a namespace's status indexes are complete, and how long it lives.

        ``create.lua`` sets it when the namespace's first job starts; a
        namespace written by jobtrack 0.1 gets it once they are built.
        """
        return self.namespace_key(namespace, "indexed")

    def _build_indexes(self, namespace: str) -> Steps[None]:
        """Enter every job of the namespace in its status indexes, then mark them built."""
        every = (self.index_key(namespace),)
        before: ListKey | None = None
        while True:
            entries = yield from self._index_page(every, _BUILD_BATCH, before)
            assert entries is not None  # (asked of the index of every job: never None)
            last = len(entries) < _BUILD_BATCH
            (done,) = yield from pipelined(
                [self._tidy(namespace, [j for _, j in entries], built=last)]
            )
            raise_errors(done)
            if last:
                return
            before = entries[-1]

    def expired(self, namespace: str, expired_before: int) -> Steps[int]:
        """Delete the namespace's jobs expired at or before *expired_before* (ms): a purge."""
        expiring = self.index_key(namespace, "expiring")
        gone = 0
        while True:
            (ids,) = yield from pipelined([Call(
                ("ZRANGEBYSCORE", expiring, "-inf", expired_before, "LIMIT", 0, _PURGE_BATCH),
                lambda reply: [_text(member) for member in reply],
            )])  # fmt: skip
            ids = raise_errors(ids)
            results = yield from pipelined(
                [self._delete(namespace, jid, expired_before) for jid in ids]
            )
            for existed, emptied in map(raise_errors, results):
                gone += existed
                if emptied:
                    yield from self._unlisted(namespace)
            if len(ids) < _PURGE_BATCH:  # each id left the range, deleted or not: progress
                return gone


def _names(reply: Any) -> list[str]:
    try:
        return [_text(name) for name in reply or ()]
    except (TypeError, UnicodeDecodeError):
        raise _corrupt("a list of namespaces", reply) from None


def item_field(item: str) -> str | bytes:
    """An item's field in its job's items hash: the name, or a 12-byte digest of a long one.

    A 40-character name costs ~80 bytes of Redis memory as a field, its digest
    ~56; short names (up to 11 bytes) stay themselves, so the two never meet.
    """
    data = item.encode()
    if len(data) <= 11:
        return item
    return hashlib.blake2b(data, digest_size=12).digest()


def _failed_page(reply: Any) -> list[tuple[int, FailedItem]] | None:
    if reply is None:
        return None
    try:
        page = []
        for packed in reply:  # (a listed item without its value is corrupt: raises below)
            _, position, ms, name, error = _text(packed).split("\n", 4)
            page.append((int(position), FailedItem(name, error or None, from_ms(int(ms)))))
    except (TypeError, ValueError, UnicodeDecodeError, OverflowError):
        raise _corrupt("a failed-items page", reply) from None
    return page


def _error_groups(reply: Any) -> list[ErrorCount] | None:
    if reply is None:
        return None
    try:
        if isinstance(reply, list):
            reply = dict(zip(reply[::2], reply[1::2], strict=True))
        groups = []
        for message, packed in reply.items():
            count, first, last = (int(part) for part in _text(packed).split(" "))
            groups.append(ErrorCount(_text(message) or None, count, from_ms(first), from_ms(last)))
    except (TypeError, ValueError, UnicodeDecodeError, OverflowError, AttributeError):
        raise _corrupt("an error count", reply) from None
    return groups


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    """Keep *value* in *cache* (a few thousand jobs' worth: it starts over when full)."""
    if len(cache) >= _KEY_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


class Prepacked(bytes):
    """A whole command already in RESP (:meth:`Call.resp`), sent as it is.

    Only a runner over the store's own connections (``ThreadConnections``)
    sends it; pipelines and other clients get the call's ``args``.
    """


def resp_args(values: Sequence[Any]) -> bytes:
    """*values* (str, bytes or int) as RESP bulk strings, as redis-py would send them."""
    out = []
    for value in values:
        if type(value) is int:
            small = _SMALL_INTS.get(value)
            if small is not None:  # counts of 0 and 1: most updates
                out.append(small)
                continue
            data = b"%d" % value
        else:
            data = value if type(value) is bytes else str(value).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


_SMALL_INTS = {i: b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(100)}


def raise_errors(result: Any) -> Any:
    """*result*, unless it is a ``JobtrackError`` (raised): a settled call's result."""
    if isinstance(result, JobtrackError):
        raise result
    return result


def _script(
    name: str, keys: Sequence[str], argv: Sequence[Any], decode: Callable[[Any], Any]
) -> Call:
    script = SCRIPTS[name]
    return Call(("EVALSHA", script.sha, len(keys), *keys, *argv), decode, script)


def pipelined(calls: Sequence[Call]) -> Steps[list[Any]]:
    """The one NOSCRIPT path: run *calls* in a pipeline, reloading lost scripts.

    Where the server lacked a script, nothing of that call ran: load the
    script and run those calls again. Yields what to send (a list of calls,
    or a :class:`Script` to load); returns each call's result or ``JobtrackError``.
    """
    noscript = import_redis().exceptions.NoScriptError
    replies: list[Any] = list((yield calls))
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, noscript)]
    if missing:
        for script in {calls[i].script for i in missing}:
            if script is not None:
                yield script
        again = yield [calls[i] for i in missing]
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return [settle(call, reply) for call, reply in zip(calls, replies, strict=True)]


def settle(call: Call, reply: Any) -> Any:
    """A pipelined call's result: decoded, or the error that stopped it."""
    if isinstance(reply, Exception):
        return driver_error(reply)
    try:
        return call.decode(reply)
    except JobtrackError as exc:
        return exc


def _index_reply(reply: Any) -> list[ListKey] | None:
    """The entries of a ``page.lua`` reply ``{read, entries}`` (None: indexes to build)."""
    try:
        read, flat = reply
        if read == -1:
            return None
    except (TypeError, ValueError):
        raise _corrupt("a listing", reply) from None
    return _flat_pairs(flat)


def _flat_pairs(reply: Any) -> list[ListKey]:
    """Index entries ``(ms, job id)`` from a flat ``member, score, ...`` reply of a script."""
    try:  # (an odd length: zip's ValueError)
        return [
            (int(_text(score)), _text(member))
            for member, score in zip(reply[::2], reply[1::2], strict=True)
        ]
    except (TypeError, ValueError, UnicodeDecodeError, OverflowError):
        raise _corrupt("a listing", reply) from None


def job_from_update_reply(namespace: str, job_id: str, reply: Any) -> JobStatus:
    """Turn the reply of ``update.lua`` into the new status, or raise its error."""
    try:
        tag = reply[0]
        if type(tag) is not str:
            tag = _text(tag)
        if tag == "ok":
            (
                _, total, processed, successful, failed, error, started, updated, finished,
                expires, rate, rate_at, folded,
            ) = reply  # fmt: skip
            if type(updated) is not int:
                raise TypeError("times must be integers")
            successful, failed = int(successful), int(failed)
            rate, folded = _rate(rate, folded, successful + failed)
            return JobStatus(
                job_id,
                namespace,
                _RUNNING if finished is None else _COMPLETED,
                int(total),
                int(processed),
                successful,
                failed,
                None if error is None else _text(error),
                from_ms(int(started)),
                from_ms(updated),
                None if finished is None else from_ms(int(finished)),
                None if expires is None else from_ms(int(expires)),
                rate,
                int(rate_at),
                folded,
            )
        if tag == "missing":
            raise JobNotFound(namespace, job_id)
        if tag == "finished":
            raise JobFinished(namespace, job_id)
        if tag == "changed":
            raise JobChanged(namespace, job_id)
        if tag == "invalid":
            what, value, total = _text(reply[1]), int(reply[2]), int(reply[3])
            if what == "total":
                raise InvalidUpdate(
                    f"update rejected for job {job_id!r} in namespace {namespace!r}: "
                    f"total would be {value}, more than {total} (2**53 - 1)"
                )
            raise InvalidUpdate(
                f"update rejected for job {job_id!r} in namespace {namespace!r}: "
                f"{what} would be {value}, more than total {total}"
            )
    except JobtrackError:
        raise
    except (TypeError, ValueError, IndexError, UnicodeDecodeError, OverflowError):
        pass
    raise _corrupt("an update", reply)


def _rate(rate: Any, folded: Any, done: int) -> tuple[float, int]:
    """A job's smoothed rate ('%.17g') and the items it holds ('rd'), as the script keeps them.

    :raises ValueError: unless the rate is finite and >= 0, and 0 <= items <= *done*.
    """
    rate, folded = float(rate), int(folded)
    if not (0.0 <= rate < math.inf and 0 <= folded <= done):
        raise ValueError(f"not a rate: {rate!r} of {folded!r} items")
    return rate, folded


def job_from_hash(
    namespace: str, job_id: str, fields: Mapping[Any, Any] | list[Any]
) -> JobStatus | None:
    """Turn ``HGETALL`` of a job's hash into a status (None if there is no job).

    *fields* is a mapping, or the flat ``[name, value, ...]`` list of a RESP2
    reply read without the client's reply callbacks.
    """
    if not fields:
        return None
    try:
        if isinstance(fields, list):  # (an odd length: zip's ValueError)
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        try:
            total = fields["t"]
        except KeyError:  # a client without decode_responses (or no total: KeyError again)
            fields = {key.decode(): value for key, value in fields.items()}
            total = fields["t"]
        get = fields.get
        finished: Any = get("fin")
        expires: Any = get("x")
        error: Any = get("e")
        done = finished is not None
        successful, failed = int(fields["s"]), int(fields["f"])
        rate, folded = _rate(get("r", 0.0), get("rd", 0), successful + failed)
        job = JobStatus(
            job_id,
            namespace,
            _COMPLETED if done else _RUNNING,
            int(total),
            int(fields["p"]),
            successful,
            failed,
            None if error is None or error in (b"", "") else _text(error),
            from_ms(int(fields["st"])),
            from_ms(int(fields["up"])),
            from_ms(int(finished)) if done else None,
            None if expires is None else from_ms(int(expires)),
            rate,
            int(get("ra", 0)),
            folded,
        )
    except (TypeError, ValueError, KeyError, UnicodeDecodeError, OverflowError, AttributeError):
        raise _corrupt("a read", fields) from None
    return job
