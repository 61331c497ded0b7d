"""Fixtures for the docs-site browser tests: the built `_site/` served on 127.0.0.1, driven by Debian's chromium.

These tests run only with COLLAB_LESSONS_BROWSER=1 (as `.ci/run` does, after `bash tools/docs.sh`); a plain
`pytest` skips them. Screenshots go to $DOCS_SCREENSHOTS (default `docs_screenshots/`).
"""
import os
import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT/'_site'
ENABLED = os.environ.get('COLLAB_LESSONS_BROWSER') == '1'
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    if ENABLED: return
    skip = pytest.mark.skip(reason="browser tests: run `bash tools/docs.sh`, then `COLLAB_LESSONS_BROWSER=1 pytest tests/browser`")
    for item in items:
        if HERE in Path(item.fspath).parents: item.add_marker(skip)


def chromium_path():
    "Debian's chromium (or $CHROMIUM); Playwright downloads no browser of its own here."
    path = os.environ.get('CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    if not path: pytest.fail("No chromium found: `apt-get install -y chromium fonts-nanum` (or set CHROMIUM).")
    return path


@pytest.fixture(scope='session')
def site_dir():
    if not (SITE/'index.html').exists(): pytest.fail(f"No built site in {SITE}: run `bash tools/docs.sh` first.")
    return SITE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='session')
def base_url(site_dir):
    "The site served on 127.0.0.1 at a free port, for the whole session."
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(_QuietHandler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='session')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), headless=True,
                               args=['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
                                     '--disable-background-networking', '--disable-component-update'])
        yield b
        b.close()


@pytest.fixture
def local_page(browser):
    "A maker of fresh pages that may only talk to `url`: any other request is blocked and recorded in `page.outside_requests`."
    contexts = []
    def make(url, viewport, timeout_ms):
        context = browser.new_context(viewport=viewport, locale='ko-KR')
        contexts.append(context)
        context.set_default_timeout(timeout_ms)
        pg = context.new_page()
        pg.outside_requests = []

        def route(r):
            if r.request.url.startswith(url): r.continue_()
            else:
                pg.outside_requests.append(r.request.url)
                r.abort()
        pg.route('**/*', route)
        return pg
    yield make
    for context in contexts: context.close()


@pytest.fixture
def page(local_page, base_url):
    """A fresh page whose requests may only go to the local server; any other request is blocked and recorded
    in `page.outside_requests`, failed local ones in `page.failed_requests`."""
    pg = local_page(base_url, {'width': 1280, 'height': 900}, 10_000)
    pg.failed_requests = []
    pg.on('response', lambda resp: resp.status >= 400 and pg.failed_requests.append(f'{resp.status} {resp.url}'))
    pg.on('requestfailed', lambda req: req.url.startswith(base_url) and pg.failed_requests.append(f'failed {req.url}'))
    return pg


@pytest.fixture(scope='session')
def shots():
    "Folder for screenshots (CI prints it)."
    d = Path(os.environ.get('DOCS_SCREENSHOTS', ROOT/'docs_screenshots'))
    d.mkdir(parents=True, exist_ok=True)
    return d


def korean_fonts(page, locator):
    "Installed fonts chromium really draws the text of `locator`'s element with that are Korean (empty: boxes or a fallback)."
    locator.evaluate("e => e.setAttribute('data-font-probe', '1')")
    cdp = page.context.new_cdp_session(page)
    cdp.send('DOM.enable')
    cdp.send('CSS.enable')
    root = cdp.send('DOM.getDocument', {'depth': -1})['root']['nodeId']
    node = cdp.send('DOM.querySelector', {'nodeId': root, 'selector': '[data-font-probe]'})['nodeId']
    fonts = cdp.send('CSS.getPlatformFontsForNode', {'nodeId': node})['fonts']
    return [f['familyName'] for f in fonts
            if re.search(r'nanum|cjk|kr|gothic|myeongjo', f['familyName'], re.I) and f['glyphCount'] > 0]


@pytest.fixture
def korean_font_check():
    "`korean_fonts(page, locator)`, for tests in this folder."
    return korean_fonts
