"""The page for people at /ui/ (SPEC section 8): its files over HTTP, then the page in a browser.

The browser is Debian's chromium driven by Playwright's Python client (no
browser download); the app runs under real uvicorn over a memory store with
a manual clock. In CI (``CI`` set) a missing chromium fails these tests.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import queue
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app
from jobtrack.static import ui_files
from jobtrack.testing.reference import ManualClock

from .asgi_driver import call, serving

CHROMIUM = "/usr/bin/chromium"
NS = "documents"
STALL_AFTER = dt.timedelta(seconds=30)


@pytest.fixture
def app() -> Any:
    return status_app(JobTracker(MemoryStore()))


# --- the files, in-process ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/index.html", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ],
)
def test_each_file_with_its_type_and_etag(app: Any, path: str, content_type: str) -> None:
    got = call(app, "GET", path)
    name = path.rpartition("/")[2] or "index.html"
    assert got.status == 200 and got.body == ui_files()[name].body
    assert got.headers["content-type"] == content_type
    assert got.headers["cache-control"] == "no-cache"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-length"] == str(len(got.body))
    etag = got.headers["etag"]
    again = call(app, "GET", path, headers=[(b"if-none-match", etag.encode())])
    assert again.status == 304 and again.body == b"" and again.headers["etag"] == etag
    head = call(app, "HEAD", path)
    assert head.status == 200 and head.body == b"" and head.headers["etag"] == etag
    assert call(app, "POST", path).status == 405


def test_the_page_loads_only_its_own_files(app: Any) -> None:
    page = call(app, "GET", "/ui/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    text = page.body.decode()
    assert "http" not in text.replace('http-equiv="', "")  # no absolute URL, no CDN
    script = ui_files()["app.js"].body.decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert not re.search(r"""fetch\(\s*["'`]/|EventSource\(\s*["'`]/""", script)  # relative


def test_ui_redirects_to_the_folder_relatively(app: Any) -> None:
    for root in ("", "/jobs"):
        got = call(app, "GET", "/ui", root_path=root)
        assert got.status == 308 and got.headers["location"] == "ui/"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/nothing.js",
        "/ui/../asgi.py",
        "/ui/..%2Fasgi.py",
        "/ui/%2E%2E/asgi.py",
        "/ui/..%2F..%2Fpyproject.toml",
        "/ui/%2E%2E%2Fstatic.py",
        "/ui%2Findex.html",
        "/ui/sub/index.html",
        "/ui/index.html/",
        "/ui/index.html%00",
        "/ui/.",
        "/ui//",
        "/ui/__init__.py",
        "/uix/",
        "/UI/",
    ],
)
def test_nothing_else_under_ui(app: Any, path: str) -> None:
    for method in ("GET", "HEAD", "POST"):
        got = call(app, method, path)
        assert got.status == 404, (method, path)
        assert got.headers["content-type"] == "application/json"


def test_under_a_prefix(app: Any) -> None:
    got = call(app, "GET", "/ui/app.js", root_path="/jobs")
    assert got.status == 200 and got.body == ui_files()["app.js"].body
    assert call(app, "GET", "/ui/../asgi.py", root_path="/jobs").status == 404


def test_the_files_ship_in_the_package() -> None:
    assert {"index.html", "app.js", "style.css"} <= set(ui_files())


# --- the page in a browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module (Debian's; Playwright downloads nothing)."""
    if not os.path.exists(CHROMIUM) or importlib.util.find_spec("playwright") is None:
        why = f"needs {CHROMIUM} (apt-get install chromium) and playwright (the dev extra)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Site:
    """A tracker with a manual clock, its app under uvicorn, and a browser page on it."""

    def __init__(self, browser: Any, base: str, tracker: JobTracker, clock: ManualClock) -> None:
        self.base = base
        self.tracker = tracker
        self.clock = clock
        self.context = browser.new_context(locale="en-US", timezone_id="UTC")
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page


@pytest.fixture
def site(browser: Any) -> Iterator[Site]:
    clock = ManualClock(dt.datetime(2026, 5, 21, 12, 0, tzinfo=dt.timezone.utc))
    tracker = JobTracker(MemoryStore(), clock=clock, stall_after=STALL_AFTER)
    with serving(status_app(tracker)) as base:
        site = Site(browser, base, tracker, clock)
        yield site
        site.context.close()
    assert site.problems == []  # no console errors, no uncaught exceptions
    assert all(url.startswith(base + "/") for url in site.requested)  # nothing from elsewhere


def row(page: Any, job_id: str) -> Any:
    return page.locator(f'#jobs tr[data-job="{job_id}"]')


def test_page_lists_namespaces_and_jobs(site: Site) -> None:
    running = site.tracker.start(NS, 10).job_id
    site.tracker.start("other", 3)
    page = site.open("/ui/")
    expect(page.locator("#connection")).to_have_text(re.compile("^Live"))
    expect(page.locator("#namespaces tbody")).to_contain_text(NS)
    page.get_by_role("link", name=NS).click()
    expect(row(page, running)).to_contain_text("running")
    expect(row(page, running).locator("progress")).to_have_attribute("value", "0")


def test_bar_moves_while_a_pipeline_records(site: Site) -> None:
    job = site.tracker.start(NS, 10).job_id
    page = site.open(f"/ui/#ns={NS}")
    list_bar = row(page, job).locator("progress")
    expect(list_bar).to_have_attribute("value", "0")
    batches: queue.Queue[int | None] = queue.Queue()
    recorded: queue.Queue[int] = queue.Queue()

    def pipeline() -> None:  # another thread records a batch each time it is given one
        for size in iter(batches.get, None):
            for _ in range(size):
                site.tracker.record(NS, job, successful=1)
                site.clock.advance(seconds=1)
            recorded.put(size)

    worker = threading.Thread(target=pipeline, daemon=True)
    worker.start()
    batches.put(3)
    recorded.get(timeout=60)
    expect(list_bar).to_have_attribute("value", "30")
    expect(row(page, job)).to_contain_text("3 of 10")
    page.get_by_role("link", name=job).click()  # open it: server-sent events from here
    detail = page.locator("#job-bar")
    expect(detail).to_have_attribute("value", "30")
    expect(page.locator("#job-facts")).to_contain_text("server-sent events")
    batches.put(3)
    recorded.get(timeout=60)
    expect(detail).to_have_attribute("value", "60")
    expect(list_bar).to_have_attribute("value", "60")
    expect(page.locator("#job-facts")).to_contain_text(re.compile(r"Rate[\d.]+ items/(s|min)"))
    expect(page.locator("#job-facts")).to_contain_text(re.compile(r"ETAin \d+ s"))
    batches.put(4)
    batches.put(None)
    worker.join(timeout=60)
    expect(detail).to_have_attribute("value", "100")
    expect(page.locator("#job-section .badge")).to_have_text(re.compile("completed$"))


def test_a_stalled_job_is_marked(site: Site) -> None:
    stuck = site.tracker.start(NS, 80).job_id
    site.tracker.record(NS, stuck, successful=79)
    page = site.open(f"/ui/#ns={NS}")
    expect(row(page, stuck)).to_contain_text("running")
    site.clock.advance(seconds=STALL_AFTER.total_seconds() + 1)
    expect(row(page, stuck).locator(".badge")).to_have_text(re.compile("stalled$"))
    expect(row(page, stuck)).to_have_attribute("data-status", "stalled")


def test_completed_and_aborted_jobs_say_so(site: Site) -> None:
    done = site.tracker.start(NS, 2).job_id
    site.tracker.record(NS, done, successful=2)
    aborted = site.tracker.start(NS, 5).job_id
    site.tracker.record(NS, aborted, item="a", successful=1)
    site.tracker.record(NS, aborted, item="b", failed=1, error="<b>bad vector</b>")
    site.tracker.abort(NS, aborted, "worker gave up")
    page = site.open(f"/ui/#ns={NS}")
    expect(row(page, done).locator(".badge")).to_have_text(re.compile("completed$"))
    expect(row(page, aborted).locator(".badge")).to_have_text(re.compile("completed, 4 failed"))
    page.get_by_role("link", name=aborted).click()
    expect(page.locator("#errors tbody")).to_contain_text("worker gave up")
    expect(page.locator("#errors tbody")).to_contain_text("<b>bad vector</b>")  # as text
    expect(page.locator("#failed-items tbody")).to_contain_text("b")
    expect(page.locator("#job-facts")).to_contain_text("Kept until")
    assert page.locator("#errors tbody b").count() == 0  # never parsed as HTML


def test_works_under_a_prefix(browser: Any) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    clock = ManualClock(dt.datetime(2026, 5, 21, 12, 0, tzinfo=dt.timezone.utc))
    tracker = JobTracker(MemoryStore(), clock=clock)
    job = tracker.start(NS, 4).job_id
    tracker.record(NS, job, successful=1)
    host = Starlette(routes=[Mount("/jobs", app=status_app(tracker))])
    with serving(host) as base:
        site = Site(browser, base, tracker, clock)
        page = site.open("/jobs/ui")  # redirected to /jobs/ui/
        expect(page.locator("#namespaces tbody")).to_contain_text(NS)
        page.get_by_role("link", name=NS).click()
        expect(row(page, job).locator("progress")).to_have_attribute("value", "25")
        page.get_by_role("link", name=job).click()
        expect(page.locator("#job-bar")).to_have_attribute("value", "25")
        tracker.record(NS, job, successful=3)
        expect(page.locator("#job-bar")).to_have_attribute("value", "100")
        site.context.close()
    assert site.problems == []
    assert all(url.startswith(base + "/jobs/") for url in site.requested)


def test_without_the_namespaces_and_progress_routes(browser: Any) -> None:
    """An app without /namespaces or /progress (404): the page still lists and follows jobs."""
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 4).job_id
    inner = status_app(tracker)

    async def older(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/namespaces" or path.endswith("/progress")):
            body = b'{"status":"failure","message":"Not found."}'
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    with serving(older) as base:
        site = Site(browser, base, tracker, ManualClock())
        page = site.open("/ui/")
        expect(page.locator("#namespaces-note")).to_contain_text("open one by its name")
        page.get_by_label("Open a namespace").fill(NS)
        page.get_by_role("button", name="Open").click()
        expect(row(page, job)).to_contain_text("running")
        tracker.record(NS, job, successful=2)
        expect(row(page, job).locator("progress")).to_have_attribute("value", "50")
        site.context.close()
    # the browser reports each 404 it was answered; nothing else
    assert all("404" in problem for problem in site.problems), site.problems
