"""The offline docs converter (docs_src/build_site.py): `_proc` quirks fixed, pages named and ordered like Quarto's."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'docs_src'))
import build_site  # noqa: E402
from anchors import pandoc_slug  # noqa: E402

PREFIX = 'https://collab-lessons.github.io/collab-lessons/'
PAGES = {'course/10_data.ipynb': 'course/data', 'course/20_dot_product.ipynb': 'course/dot_product',
         'reference/01_ratings.ipynb': 'reference/ratings'}


def raw(text): return {'cell_type': 'raw', 'metadata': {}, 'source': text}


def code(src, outputs=(), **extra):
    return {'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': list(outputs), 'execution_count': 1, **extra}


def md_output(text): return {'output_type': 'execute_result', 'data': {'text/markdown': text, 'text/plain': ''}}


def test_front_matter_gives_page_name_and_title():
    fm = build_site.front_matter(raw('---\ndescription: Load ratings.\noutput-file: data.html\ntitle: "데이터 준비"\n\n---\n'))
    assert fm == {'description': 'Load ratings.', 'output-file': 'data.html', 'title': '데이터 준비'}
    assert build_site.page_name(Path('course/10_data.ipynb'), fm) == 'course/data'
    assert build_site.page_name(Path('glossary.ipynb'), {}) == 'glossary'


def test_links_point_at_site_pages():
    md = (f'[데이터 준비](10_data.ipynb), [`DotProduct`]({PREFIX}course/dot_product.html#dotproduct), '
          f'[x](20_dot_product.ipynb#학습), [읽기](../reference/01_ratings.ipynb), [`read_ratings`]({PREFIX}reference/ratings.html#read_ratings)')
    assert build_site.fix_markdown(md, PAGES, PREFIX, 'course') == (
        '[데이터 준비](data.html), [`DotProduct`](dot_product.html#dotproduct), [x](dot_product.html#학습), '
        '[읽기](../reference/ratings.html), [`read_ratings`](../reference/ratings.html#read_ratings)')
    # from the site's root (the index page): the folder stays in the link
    assert build_site.fix_markdown('[데이터](course/10_data.ipynb)', PAGES, PREFIX) == '[데이터](course/data.html)'


def test_show_doc_cell_becomes_markdown_without_rules():
    sd = '---\n\n[source](https://github.com/x/y.py#L3){target="_blank" style="float:right"}\n\n### load_ratings\n\n*Doc.*'
    cells = build_site.convert_code(code('#| echo: false\n#| output: asis\nshow_doc(load_ratings)', [md_output(sd)],
                                         has_sd=True), PAGES, PREFIX)
    assert len(cells) == 1 and cells[0]['cell_type'] == 'markdown'
    text = cells[0]['source']
    assert '---' not in text and '{target=' not in text and '### load_ratings' in text
    assert '<a class="nbdev-source" href="https://github.com/x/y.py#L3"' in text


def test_quarto_cell_options_become_tags():
    def tags(src): return [c['metadata'].get('tags', []) for c in build_site.convert_code(code(src), PAGES, PREFIX)]
    assert tags('#| echo: false\nx') == [['remove-input']]
    assert tags('#| output: false\nx') == [['remove-output']]
    assert tags('#| code-fold: true\nx') == [['hide-input']]
    assert tags('#| include: false\nx') == []
    cell = build_site.convert_code(code('#| echo: false\nx = 1\nx'), PAGES, PREFIX)[0]
    assert cell['source'] == 'x = 1\nx'


def test_callouts_become_admonitions():
    md = '::: {.callout-tip}\n## 잠깐\n본문이야.\n:::'
    assert build_site.fix_markdown(md, {}, PREFIX) == ':::{admonition} 잠깐\n:class: tip\n본문이야.\n:::'
    assert build_site.fix_markdown('::: {.callout-note}\n메모.\n:::', {}, PREFIX) == ':::{note}\n메모.\n:::'


def test_new_notebooks_join_the_sidebar_in_order():
    names = ['index', 'course/20_dot_product', 'course/10_data', 'course/73b_ranking', 'reference/02_own_ratings',
             'reference/01_ratings', 'glossary']
    entries = [(Path(f'{n}.ipynb'), build_site.page_name(Path(f'{n}.ipynb'), {'output-file': n.split('_', 1)[-1] + '.html'}
                if '/' in n else {})) for n in names]
    toc = build_site.toc(entries)
    assert toc['root'] == 'index'
    chapters = [(p['caption'], [c['file'] for c in p['chapters']]) for p in toc['parts']]
    assert chapters == [('강의', ['course/data', 'course/dot_product', 'course/ranking']),
                        ('라이브러리 참조', ['reference/ratings', 'reference/own_ratings', 'api']),
                        ('용어집', ['glossary'])]


def test_pandoc_slugs_match_nbdev_and_quarto_anchors():
    assert pandoc_slug('DotProduct') == 'dotproduct'
    assert pandoc_slug('root_mean_squared_error') == 'root_mean_squared_error'
    assert pandoc_slug('DotProductBias.forward') == 'dotproductbias.forward'
    assert pandoc_slug('평가 지표: RMSE') == '평가-지표-rmse'
    assert pandoc_slug('10 Things') == 'things'
