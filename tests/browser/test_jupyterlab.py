"""A lesson in real JupyterLab (headless chromium): it opens unmodified, its Korean prose is drawn with a Korean font,
and Run All trains with a progress bar and a training table and no error.

Runs with COLLAB_LESSONS_BROWSER=1 (see conftest.py), on a temporary copy of `nbs/`, with this environment's
FASTAI_HOME and OMP_NUM_THREADS=1 (`.ci/run` sets both). About 1.5 minutes: the lesson trains 5 epochs.
Screenshots go to $DOCS_SCREENSHOTS/jupyterlab/.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSON = 'course/40_bias.ipynb'      # a core lesson that trains (fit_one_cycle, 5 epochs)
RUN_TIMEOUT_S = 600
IN_LESSON_JS = "sel => [...document.querySelectorAll(`.jp-NotebookPanel:not(.lm-mod-hidden) ${sel}`)]"


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_server(url, proc, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None: pytest.fail(f"JupyterLab exited with code {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url + 'api/status', timeout=2): return
        except OSError: time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer at {url} within {timeout} s")


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "JupyterLab on a copy of nbs/, with its own config/runtime folders and the course's kernelspec."
    tmp = tmp_path_factory.mktemp('lab')
    nbs = tmp/'nbs'
    shutil.copytree(ROOT/'nbs', nbs, ignore=shutil.ignore_patterns('.ipynb_checkpoints', 'models'))
    subprocess.run([sys.executable, str(ROOT/'tools'/'lab_kernel.py'), 'install', '--prefix', str(tmp/'prefix')],
                   check=True, capture_output=True)
    news = tmp/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')   # no "get Jupyter news?" pop-up over the screenshots
    env = dict(os.environ, OMP_NUM_THREADS='1', JUPYTER_PATH=str(tmp/'prefix'/'share'/'jupyter'),
               JUPYTER_CONFIG_DIR=str(tmp/'config'), JUPYTER_RUNTIME_DIR=str(tmp/'runtime'),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp/'workspaces'))
    port = free_port()
    log = open(tmp/'jupyterlab.log', 'w')
    proc = subprocess.Popen([str(Path(sys.executable).parent/'jupyter'), 'lab', '--allow-root', '--no-browser',
                             '--ip', '127.0.0.1', f'--port={port}', "--IdentityProvider.token=",
                             f'--ServerApp.root_dir={nbs}', f'--LabApp.user_settings_dir={tmp/"settings"}'], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    try:
        wait_for_server(url, proc)
        yield url, nbs
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()
        print(f"JupyterLab log: {tmp/'jupyterlab.log'}")


@pytest.fixture
def lab_page(local_page, lab):
    "A chromium page that may only talk to the local JupyterLab (other requests are blocked and recorded)."
    url, _ = lab
    return local_page(url, {'width': 1400, 'height': 1000}, 60_000)


@pytest.fixture(scope='module')
def lab_shots(shots):
    d = shots/'jupyterlab'
    d.mkdir(exist_ok=True)
    return d


def kernel_state(page, url):
    "Execution state of the lesson's kernel, from the server's sessions API."
    sessions = page.request.get(url + 'api/sessions').json()
    states = [s['kernel']['execution_state'] for s in sessions if s['path'].endswith(LESSON) and s.get('kernel')]
    return states[0] if states else None


def wait_idle(page, url, timeout_s):
    end = time.time() + timeout_s
    while time.time() < end:
        if kernel_state(page, url) == 'idle' and \
                page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]').count():
            return
        page.wait_for_timeout(300)
    pytest.fail(f"the kernel of {LESSON} was not idle within {timeout_s} s")


def run_all(page):
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()


def saved_cells(page, nbs):
    "Save the notebook (Ctrl+S) and return its code cells as JupyterLab wrote them."
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook').first.click(position={'x': 5, 'y': 5})
    page.keyboard.press('Control+s')
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')")
    nb = json.loads((nbs/LESSON).read_text(encoding='utf-8'))
    return [c for c in nb['cells'] if c['cell_type'] == 'code']


def test_lesson_opens_clean_and_runs_in_jupyterlab(lab_page, lab, lab_shots, korean_font_check):
    page, (url, nbs) = lab_page, lab
    page.goto(url + f'lab/tree/{LESSON}?reset')
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook').first.wait_for()
    wait_idle(page, url, 90)
    page.wait_for_timeout(2000)   # language_info and kernelspec arrive right after the kernel starts
    page.screenshot(path=str(lab_shots/'opened.png'))
    tab = page.locator('.lm-TabBar-tab.jp-mod-current')
    assert Path(LESSON).name in tab.inner_text()   # the tab shows the file name, not its folder
    assert 'jp-mod-dirty' not in tab.get_attribute('class'), \
        f"{LESSON} is marked modified right after opening: run `python tools/lab_kernel.py stamp` and nbdev-clean on it"

    prose = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedMarkdown p').filter(has_text='편향').first
    assert korean_font_check(page, prose), "Korean prose in JupyterLab is not drawn with a Korean font: install fonts-nanum"

    from playwright.sync_api import Error as PlaywrightError  # here: plain pytest runs collect this file without playwright
    run_all(page)
    bar_seen, end = False, time.time() + RUN_TIMEOUT_S
    page.wait_for_timeout(1000)
    while time.time() < end:
        if not bar_seen and page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea progress').count():
            bar_seen = True
            try: page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea progress').first.scroll_into_view_if_needed(timeout=5000)
            except PlaywrightError: pass  # fastprogress redraws its bar, so the element found may be gone: the screenshot shows the new one
            page.screenshot(path=str(lab_shots/'training.png'))
        running = page.evaluate(f"() => ({IN_LESSON_JS})('.jp-InputPrompt').some(e => e.textContent.includes('*'))")
        if not running and kernel_state(page, url) == 'idle': break
        page.wait_for_timeout(250)
    else: pytest.fail(f"Run All of {LESSON} did not finish within {RUN_TIMEOUT_S} s")

    table = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea table').filter(has_text='valid_loss').first
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(lab_shots/'trained.png'))
    assert bar_seen, "no progress bar appeared while the lesson trained"
    headers = table.locator('th').all_inner_texts()
    assert {'epoch', 'train_loss', 'valid_loss'} <= set(headers), headers
    assert table.locator('tbody tr').count() == 5

    cells = saved_cells(page, nbs)
    not_run = [''.join(c['source'])[:60] for c in cells if c['execution_count'] is None]
    assert not not_run, f"cells Run All did not run: {not_run}"
    outputs = [(''.join(c['source'])[:60], o) for c in cells for o in c['outputs']]
    errors = [(src, o.get('ename'), o.get('evalue')) for src, o in outputs if o['output_type'] == 'error']
    assert not errors, f"cells failed in JupyterLab: {errors}"
    stderr = [(src, ''.join(o['text'])) for src, o in outputs if o.get('name') == 'stderr']
    assert not [e for e in stderr if 'Traceback' in e[1] or 'Error' in e[1]], stderr
    assert not page.outside_requests, f"JupyterLab tried to reach outside: {page.outside_requests}"


FIRST_LESSON = 'course/20_dot_product.ipynb'
FIRST_SCREEN_JS = """([sel, text]) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer, .jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const box = panel.getBoundingClientRect();
  const hit = [...document.querySelectorAll(`.jp-NotebookPanel:not(.lm-mod-hidden) ${sel}`)]
      .find(e => e.textContent.replace(/\\s+/g, ' ').includes(text));
  if (!hit) return null;
  const r = hit.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, panelTop: box.top, panelBottom: Math.min(box.bottom, innerHeight),
          scrollTop: panel.scrollTop};
}"""


def first_idea(nb_path):
    "Title and first Korean paragraph after it (the time line left out) of a lesson notebook, as stored."
    cells = [''.join(c['source']) for c in json.loads(nb_path.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'markdown']
    title = cells[0].splitlines()[0].lstrip('# ').strip()
    paras = [p.strip() for c in cells[1:2] for p in c.split('\n\n') if p.strip() and not p.startswith(('⏱', '>'))]
    return title, paras[0]


def test_first_screen_shows_title_and_idea(lab_page, lab, lab_shots):
    "The learner who opens 20_dot_product sees its title and its first idea without scrolling."
    page, (url, nbs) = lab_page, lab
    title, idea = first_idea(nbs/FIRST_LESSON)
    page.goto(url + f'lab/tree/{FIRST_LESSON}?reset')
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedMarkdown h1').first.wait_for()
    page.wait_for_timeout(3000)   # let the rendered markdown and the layout settle
    page.screenshot(path=str(lab_shots/'first_screen_20.png'))
    # the idea as the page shows it: markdown rendered, so compare the first 30 plain characters
    plain = idea.replace('`', '').replace('**', '')[:30]
    for sel, text in [('.jp-RenderedMarkdown h1', title), ('.jp-RenderedMarkdown p', plain)]:
        box = page.evaluate(FIRST_SCREEN_JS, [sel, text])
        assert box, f"{FIRST_LESSON}: {text!r} is not rendered in JupyterLab"
        assert box['scrollTop'] == 0, f'the notebook opened scrolled ({box})'
        assert box['panelTop'] <= box['top'] and box['bottom'] <= box['panelBottom'], \
            f"{FIRST_LESSON}: {text!r} is not on the first screen: {box} (viewport {page.viewport_size})"
