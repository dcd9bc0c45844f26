"""The example run's report opened in headless Chromium, as a reviewer opens it from a USB stick.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` package (a test extra) to drive it. Skips, saying which, where either is missing.
Screenshots are kept in ``build/test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a closed network and no display: no background connections, no GPU, no sandbox (tests may run as root)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page_of(example_report):
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            messages: list[tuple[str, str]] = []
            failed: list[str] = []
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto((example_report / "report.html").as_uri(), wait_until="load")
            yield page, messages, failed
        finally:
            browser.close()


def test_the_report_renders_without_errors_or_requests(page_of):
    page, messages, failed = page_of
    assert [m for m in messages if m[0] in ("error", "pageerror", "warning")] == []
    assert failed == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-top.png"))
    page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
    page.locator("section.sample").first.screenshot(path=str(ARTIFACTS / "report-first-sample.png"))
    assert (ARTIFACTS / "report-full.png").stat().st_size > 10_000


def test_every_image_decodes(page_of):
    page, _, _ = page_of
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert len(sizes) == 11  # the calibration and ten samples
    assert all(c and w > 100 and h > 100 for c, w, h in sizes), sizes


def test_every_sample_section_is_there_and_the_links_lead_to_it(page_of, example_rows):
    page, _, _ = page_of
    ids = page.eval_on_selector_all("section.sample", "els => els.map(e => [e.id, e.querySelector('h3').innerText])")
    assert [(i, h.split()[0]) for i, h in ids] == [(f"s{k + 1}", r["sample_id"]) for k, r in enumerate(example_rows)]
    hrefs = page.eval_on_selector_all("table.summary a", "els => els.map(e => e.getAttribute('href'))")
    assert sorted(hrefs) == sorted(f"#{i}" for i, _ in ids)


def test_the_counts_shown_are_those_of_results_csv(page_of, example_report):
    page, _, _ = page_of
    rows = list(csv.DictReader(io.StringIO((example_report / "results.csv").read_text(encoding="utf-8"))))
    for q in ("pass", "warn", "fail"):
        shown = page.inner_text(f"#n-{q}").split()
        assert shown == [q, str(sum(r["qc"] == q for r in rows))], shown
