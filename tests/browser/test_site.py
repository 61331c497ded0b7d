"""The built docs site, opened in a real browser: every page, link, image, the lesson path and the API reference."""
import importlib
import json
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

ROOT = Path(__file__).resolve().parents[2]
LESSON = 'course/dot_product.html'   # a lesson with show_doc entries and a stored training table
LESSON_TITLE = '임베딩과 점곱 모델'

PAGE_INFO_JS = """() => ({
  title: document.title,
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat(
       [...document.querySelectorAll('a[name]')].map(a => a.name)),
  images: [...document.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src,
                                                           ok: i.complete && i.naturalWidth > 0})),
})"""


def site_pages(site_dir):
    "Every page of the site: the home page, search and API pages, and the pages of both books (course/, reference/)."
    return sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob('*.html')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(site_dir).parts))


def notebooks():
    return sorted(nb for nb in (ROOT/'nbs').rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in nb.relative_to(ROOT/'nbs').parts))


def page_name(nb):
    "Site page of a notebook, as nbdev names it (`output-file`): its folder and file name without the number prefix."
    rel = nb.relative_to(ROOT/'nbs')
    return (rel.parent/(re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html')).as_posix()


def test_every_page_loads_with_working_links_and_images(page, base_url, site_dir):
    pages = site_pages(site_dir)
    expected = {page_name(nb) for nb in notebooks()}
    assert expected | {'api.html', 'search.html'} <= set(pages), f"pages missing from the site: {expected - set(pages)}"
    info, problems = {}, []
    for name in pages:
        resp = page.goto(base_url + name, wait_until='load')
        assert resp is not None and resp.ok, f"{name}: HTTP {resp and resp.status}"
        info[name] = page.evaluate(PAGE_INFO_JS)
        problems += [f"{name}: image not shown: {i['src']}" for i in info[name]['images'] if not i['ok']]
    for name, data in info.items():
        for href in data['links']:
            url, frag = urldefrag(href)
            if not url.startswith(base_url): continue
            target = unquote(urlparse(url).path).lstrip('/') or 'index.html'
            if target.endswith('/'): target += 'index.html'
            if not (site_dir/target).is_file(): problems.append(f"{name}: broken link {href}")
            elif frag and target in info and unquote(frag) not in info[target]['ids']:
                problems.append(f"{name}: link to a missing anchor {href}")
    problems += [f"request failed: {r}" for r in page.failed_requests]
    problems += [f"request outside the site (must work offline): {r}" for r in page.outside_requests]
    assert not problems, '\n'.join(problems)


def test_home_to_lesson_to_api_entry(page, base_url, shots):
    page.goto(base_url + 'index.html')
    assert '협업 필터링' in page.locator('article').inner_text()
    page.screenshot(path=str(shots/'home.png'))
    page.locator('article').get_by_role('link', name=LESSON_TITLE, exact=True).first.click()
    page.wait_for_url(f'**/{LESSON}')
    assert LESSON_TITLE in page.locator('article h1').inner_text()
    page.screenshot(path=str(shots/'lesson.png'))
    page.locator('.bd-sidebar-secondary').get_by_role('link', name='DotProduct', exact=True).click()
    page.wait_for_url('**#dotproduct')
    entry = page.locator('#dotproduct')
    assert entry.is_visible() and entry.evaluate('e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }')
    assert page.get_by_text('def DotProduct(').first.is_visible()


def test_api_entry_links_back_to_its_lesson(page, base_url):
    page.goto(base_url + 'api.html')
    entry = page.locator('section#dotproduct')
    entry.get_by_role('link', name='강의에서 보기').click()
    page.wait_for_url(f'**/{LESSON}#dotproduct')
    assert page.locator('#dotproduct').is_visible()


def test_korean_text_is_drawn_with_a_korean_font(page, base_url, korean_font_check):
    page.goto(base_url + LESSON)
    heading = page.locator('article h1')
    assert heading.is_visible() and LESSON_TITLE in heading.inner_text()
    assert korean_font_check(page, page.locator('article p').first), "Korean prose is not drawn with a Korean font (boxes?)"


def test_stored_training_table_is_visible(page, base_url, shots):
    page.goto(base_url + LESSON)
    table = page.locator('div.cell_output table').filter(has_text='valid_loss').first
    table.scroll_into_view_if_needed()
    assert table.is_visible()
    headers = table.locator('th').all_inner_texts()
    assert {'epoch', 'train_loss', 'valid_loss'} <= set(headers), headers
    rows = table.locator('tbody tr')
    assert rows.count() >= 1
    assert re.fullmatch(r'\d+\.\d+', rows.first.locator('td').nth(headers.index('valid_loss')).inner_text().strip())
    page.screenshot(path=str(shots/'lesson_training_table.png'))


def test_math_is_rendered_as_mathml(page, base_url):
    page.goto(base_url + 'course/prediction_range.html')
    maths = page.locator('article math')
    assert maths.count() >= 1
    box = maths.first.bounding_box()
    assert box and box['width'] > 20 and box['height'] > 5
    assert '\\sigma' not in page.locator('article').inner_text()


def test_sidebar_shows_the_two_books_and_the_glossary(page, base_url):
    "The sidebar has the parts 강의 · 라이브러리 참조 · 용어집, each listing its folder's notebooks in file order."
    page.goto(base_url + 'index.html')
    captions = [t.strip() for t in page.locator('nav.bd-docs-nav p.caption').all_inner_texts()]
    assert captions == ['강의', '라이브러리 참조', '용어집'], captions
    hrefs = page.locator('nav.bd-docs-nav a').evaluate_all('els => els.map(a => a.getAttribute("href"))')
    hrefs = [h.split('#')[0] for h in hrefs]
    for book in ('course', 'reference'):
        expected = [page_name(nb) for nb in sorted((ROOT/'nbs'/book).glob('[0-9]*.ipynb'))]
        assert [h for h in hrefs if h.startswith(book + '/')] == expected, hrefs
    last_reference = [h for h in hrefs if h.startswith('reference/')][-1]
    assert hrefs.index(last_reference) + 1 == hrefs.index('api.html') and hrefs[-1] == 'glossary.html'


def test_api_reference_covers_every_exported_name(page, base_url):
    page.goto(base_url + 'api.html')
    ids = set(page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id)"))
    missing = []
    for f in sorted((ROOT/'collab_lessons').glob('[!_]*.py')):
        mod = importlib.import_module(f'collab_lessons.{f.stem}')
        missing += [f'{f.stem}.{n}' for n in getattr(mod, '__all__', []) if n.lower() not in ids]
    assert not missing, f"exported names with no entry on the API page: {missing}"


def test_search_finds_a_class(page, base_url):
    "The search page (Pagefind, see test_search.py) also finds code names."
    page.goto(base_url + 'search.html?q=DotProductBias')
    results = page.locator('#pagefind-search .pagefind-ui__result-link')
    results.first.wait_for(timeout=15_000)
    assert any('course/bias.html' in h for h in results.evaluate_all('els => els.map(a => a.href)'))


def test_bias_page_shows_the_model_source(page, base_url, shots):
    "Lesson 40's page shows the source of `class DotProductBias` as code (nbdev `#| exports`), not only its signature."
    page.goto(base_url + 'course/bias.html')
    code = page.locator('article pre').filter(has_text='class DotProductBias')
    assert code.count() >= 1, "bias.html shows no code block with `class DotProductBias`"
    block = code.first
    block.scroll_into_view_if_needed()
    page.screenshot(path=str(shots/'bias_source.png'))
    assert block.is_visible()
    text = block.inner_text()
    assert 'def forward' in text and 'self.user_bias' in text, f'not the model source: {text[:300]!r}'
