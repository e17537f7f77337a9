"""Make docs/ui.png, the README's picture of the page at /ui/, from a demo pipeline.

``.venv/bin/python -m tests.ui_screenshot [docs/ui.png]``: jobs in a memory
store under a manual clock (so the picture is the same on every run), served
by uvicorn, shown by Debian's chromium through Playwright.
"""

from __future__ import annotations

import datetime as dt
import sys

from playwright.sync_api import expect, sync_playwright

from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app
from jobtrack.testing.reference import ManualClock

from .asgi_driver import serving

REASONS = ("embedding service timed out", "document is empty", "vector has 768 dims, expected 1024")


def demo(tracker: JobTracker, clock: ManualClock) -> str:
    """Jobs in several states; the id of the one to open."""
    docs = "product-docs"
    done = tracker.start(docs, 500).job_id
    for n in range(500):
        tracker.record(docs, done, item=f"manual-{n}", processed=1, successful=1)
        clock.advance(seconds=0.4)
    aborted = tracker.start(docs, 40).job_id
    for n in range(12):
        tracker.record(docs, aborted, item=f"faq-{n}", processed=1, successful=1)
        clock.advance(seconds=1)
    tracker.abort(docs, aborted, "worker killed: out of memory")
    stuck = tracker.start(docs, 80).job_id
    for n in range(79):
        tracker.record(docs, stuck, item=f"page-{n}", processed=1, successful=1)
        clock.advance(seconds=0.5)
    tracker.start("support-tickets", 2_000)
    tickets = tracker.start("support-tickets", 300).job_id
    tracker.record("support-tickets", tickets, processed=300, successful=300)
    images = tracker.start("images", 64).job_id
    tracker.record("images", images, processed=64, successful=60, failed=4, error=REASONS[0])
    running = tracker.start(docs, 1_200).job_id
    for n in range(760):  # about 1.3 items a second for ten minutes: the others stall
        failed = n % 97 == 5
        tracker.record(
            docs,
            running,
            item=f"doc-{n:04d}",
            processed=1,
            successful=0 if failed else 1,
            failed=1 if failed else 0,
            error=REASONS[n % 3] if failed else None,
        )
        clock.advance(seconds=0.8)
    return running


def main(out: str = "docs/ui.png") -> None:
    """Write the picture to *out*."""
    clock = ManualClock(dt.datetime(2026, 5, 21, 9, 0, tzinfo=dt.timezone.utc))
    tracker = JobTracker(MemoryStore(), clock=clock, stall_after=dt.timedelta(minutes=5))
    job = demo(tracker, clock)
    with serving(status_app(tracker)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = browser.new_page(
            viewport={"width": 1180, "height": 800}, locale="en-US", timezone_id="UTC"
        )
        page.emulate_media(color_scheme="light")
        page.goto(f"{base}/ui/#ns=product-docs&job={job}")
        expect(page.locator("#failed-items tbody tr")).to_have_count(8)
        expect(page.locator("#jobs tbody tr")).to_have_count(4)
        expect(page.locator("#namespaces tbody tr")).to_have_count(3)
        page.screenshot(path=out, full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
