"""Korean search on the built site: Pagefind (indexed by tools/docs.sh) matches word prefixes, so a stem finds the
word with its particle (가중치 -> 가중치를, 임베딩 -> 임베딩은). Sphinx's own search matches whole words only."""
import re

import pytest

# query -> the lesson page that must be among the first results shown
QUERIES = {'가중치': 'course/weight_decay.html', '임베딩': 'course/dot_product.html', '편향': 'course/bias.html'}
RESULT_LINKS = '#pagefind-search .pagefind-ui__result-link'


def results(page, query):
    "Hrefs of the results Pagefind shows for `query` and the marked words of their excerpts."
    page.locator(RESULT_LINKS).first.wait_for(timeout=15_000)
    page.wait_for_function("q => document.querySelector('.pagefind-ui__message')?.textContent.includes(q)", arg=query)
    hrefs = page.locator(RESULT_LINKS).evaluate_all('els => els.map(a => a.getAttribute("href"))')
    marks = page.locator('#pagefind-search mark').all_inner_texts()
    return ['/'.join(h.split('#')[0].split('/')[-2:]).lstrip('./') for h in hrefs], marks  # book/page.html


def test_theme_search_box_leads_to_prefix_search(page, base_url, shots):
    "A reader's path: the search box in the sidebar (Ctrl+K dialog), Enter, then Pagefind's results."
    page.goto(base_url + 'index.html')
    page.locator('.search-button-field:visible').first.click()
    box = page.locator('#pst-search-dialog input[name="q"]')
    box.fill('가중치')
    box.press('Enter')
    page.wait_for_url('**/search.html?q=*')
    pages, marks = results(page, '가중치')
    page.screenshot(path=str(shots/'search_korean.png'))
    assert QUERIES['가중치'] in pages[:5], pages
    # the stem is found inside longer words (with a particle), not only as a whole word; the first excerpts may all
    # hold the bare word, so look through the next pages of results too ("load more")
    for _ in range(4):
        if any(re.fullmatch('가중치[가-힣]+', m) for m in marks): break
        more = page.locator('#pagefind-search .pagefind-ui__button')
        if not more.count(): break
        more.first.click()
        page.wait_for_timeout(500)
        marks = page.locator('#pagefind-search mark').all_inner_texts()
    assert any(re.fullmatch('가중치[가-힣]+', m) for m in marks), marks
    assert not page.outside_requests and not page.failed_requests, page.failed_requests


@pytest.mark.parametrize('query', ['임베딩', '편향'])
def test_korean_stems_find_their_lesson(page, base_url, query):
    page.goto(base_url + 'search.html')
    page.locator('#pagefind-search input').fill(query)
    pages, marks = results(page, query)
    assert QUERIES[query] in pages[:5], pages
    assert any(re.match(query, m) for m in marks), marks
