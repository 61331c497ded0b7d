"""The glossary (nbs/glossary.ipynb) is the single source of Korean terms: every notebook's prose must follow it."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
GLOSSARY = NBS/'glossary.ipynb'
NONE = {'', '—', '-'}


def markdown_cells(path):
    "Source of every markdown cell of the notebook at `path`."
    nb = json.loads(Path(path).read_text(encoding='utf-8'))
    return [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown']


def table_rows(text, header):
    "Rows (lists of cells) of the markdown table in `text` whose first cell is `header`, or None."
    lines = [l.strip() for l in text.splitlines() if l.strip().startswith('|')]
    if not lines or [c.strip() for c in lines[0].strip('|').split('|')][0] != header: return None
    return [[c.strip() for c in l.strip('|').split('|')] for l in lines[2:]]


def glossary_table(header):
    for md in markdown_cells(GLOSSARY):
        rows = table_rows(md, header)
        if rows is not None: return rows
    raise AssertionError(f"{GLOSSARY.name} has no table starting with the column '{header}'")


def terms():
    "Glossary rows as dicts: korean, english, forbidden (list)."
    return [dict(korean=r[0], english=r[1],
                 forbidden=[t.strip() for t in r[3].split(',') if t.strip() not in NONE])
            for r in glossary_table('한국어')]


def clean(text):
    "Markdown text with code spans, code blocks, link targets and emphasis markers removed."
    text = re.sub(r'```.*?```', ' ', text, flags=re.S)
    text = re.sub(r'`[^`\n]*`', ' ', text)
    text = re.sub(r'\]\([^)]*\)', ']', text)
    return text.replace('**', '').replace('__', '')


def prose(path):
    "The cleaned markdown of a notebook."
    return clean('\n\n'.join(markdown_cells(path)))


def term_pattern(term, preferred=''):
    "Regex for a forbidden `term`, not glued to a preceding word; any spacing unless spacing is all it changes."
    gap = r'\s+' if term.replace(' ', '') == preferred.replace(' ', '') else r'\s*'
    return re.compile(r'(?<![\w-])' + gap.join(re.escape(w) for w in term.split()))


RANK_AS_RANKING = re.compile(r'(?<![\w])순위(?:\s*\d|마다|\s*\(rank\))|(?<![\w])(?:저|고)순위|(?:행렬|분해)의\s*순위')


def rank_as_ranking(text):
    "Contexts where `text` uses 순위 (ranking) for a matrix rank: 순위 5, 순위마다, 저순위, 행렬의 순위."
    return [text[max(0, m.start() - 15):m.end() + 15].replace('\n', ' ') for m in RANK_AS_RANKING.finditer(text)]


def lesson_notebooks():
    return sorted(p for p in NBS.rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts) and p != GLOSSARY)


def forbidden_uses(text, rows):
    "(forbidden term, glossary term, context) for each forbidden term found in `text`."
    hits = []
    for row in rows:
        for bad in row['forbidden']:
            for m in term_pattern(bad, row['korean']).finditer(text):
                hits.append((bad, row['korean'], text[max(0, m.start() - 15):m.end() + 15].replace('\n', ' ')))
    return hits


def mispaired(text, rows):
    "(english, found Korean, glossary Korean) where `Korean(english)` uses another Korean word than the glossary."
    bad = []
    for row in rows:
        pat = re.compile(r'([^\s(]*(?:\s[^\s(]+){0,3})\(' + re.escape(row['english']) + r'[,)]', re.I)
        for m in pat.finditer(text):
            before = m.group(1).strip()
            acronym = ''.join(w[0] for w in row['english'].split()).upper()
            if not before.endswith((row['korean'], acronym)): bad.append((row['english'], before, row['korean']))
    return bad


def test_glossary_has_one_korean_term_per_concept():
    rows = terms()
    assert len(rows) >= 30, f"the glossary table has only {len(rows)} terms"
    for key in ('korean', 'english'):
        seen = [r[key].lower() for r in rows]
        dups = {t for t in seen if seen.count(t) > 1}
        assert not dups, f"glossary terms listed twice in the '{key}' column: {sorted(dups)}"
    preferred = {r['korean'] for r in rows}
    clash = [(r['korean'], b) for r in rows for b in r['forbidden'] if b in preferred]
    assert not clash, f"a forbidden term is also another concept's Korean term: {clash}"


def test_glossary_forbids_the_wrong_translations_of_weight_decay():
    row = next(r for r in terms() if r['english'] == 'weight decay')
    assert row['korean'] == '가중치 감쇠'
    assert {'체중 감소', '가중치 감소'} <= set(row['forbidden'])


def test_forbidden_term_detection_catches_variants():
    rows = terms()
    found = forbidden_uses('이번에는 체중 감소와 가중치감소, 그리고 그래디언트를 써.', rows)
    assert {b for b, _, _ in found} == {'체중 감소', '가중치 감소', '그래디언트'}
    assert forbidden_uses('가중치 감쇠(weight decay)로 가중치가 감소해.', rows) == []
    assert mispaired('이것을 가중치 감소(weight decay)라고 해.', rows) == [('weight decay', '이것을 가중치 감소', '가중치 감쇠')]
    assert mispaired(clean('**가중치 감쇠**(weight decay)와 섞기(shuffle), RMSE(root mean squared error).'), rows) == []
    assert mispaired(clean('지표로 MAE(root mean squared error)를 써.'), rows) != []


def test_glossary_separates_rank_from_ranking_and_names_the_three_sets():
    rows = {r['english']: r for r in terms()}
    assert rows['rank']['korean'] == '랭크' and rows['ranking']['korean'] == '순위'
    assert rows['training set']['korean'] == '훈련 세트' and '학습 세트' in rows['training set']['forbidden']
    assert rows['validation set']['korean'] == '검증 세트'
    assert rows['test set']['korean'] == '테스트 세트' and '시험 세트' in rows['test set']['forbidden']


def test_planted_bad_sentences_fail():
    rows = terms()
    found = {b for b, _, _ in forbidden_uses('학습 세트로 학습하고 시험 세트와 시험셋으로 재.', rows)}
    assert found == {'학습 세트', '시험 세트', '시험셋'}
    assert rank_as_ranking('순위 5의 행렬 분해와 저순위 근사, 순위마다 샘플러, 행렬의 순위') != []
    assert len(rank_as_ranking('순위 5의 행렬 분해와 저순위 근사, 순위마다 샘플러, 행렬의 순위')) == 4
    assert mispaired('잠재 요인 수는 행렬의 순위(rank)야.', rows) != []
    good = '랭크 5의 행렬 분해. 추천 목록의 순위를 매기는 순위 지표(ranking metric), 순위가 높은 영화.'
    assert rank_as_ranking(good) == [] and mispaired(good, rows) == [] and forbidden_uses(good, rows) == []


@pytest.mark.parametrize('nb', lesson_notebooks(), ids=lambda p: p.name)
def test_notebook_uses_only_glossary_terms(nb):
    rows = terms()
    text = prose(nb)
    hits = forbidden_uses(text, rows)
    assert not hits, f"{nb.name} uses terms the glossary forbids (nbs/glossary.ipynb):\n" + '\n'.join(
        f"  '{bad}' -> write '{good}' ... {ctx} ..." for bad, good, ctx in hits)
    ranks = rank_as_ranking(text)
    assert not ranks, f"{nb.name} uses 순위 (ranking) for a matrix rank; write 랭크:\n" + '\n'.join(f"  ... {c} ..." for c in ranks)
    pairs = mispaired(text, rows)
    assert not pairs, f"{nb.name} pairs an English term with another Korean word than the glossary's:\n" + '\n'.join(
        f"  '{found}({en})' -> write '{good}({en})'" for en, found, good in pairs)


def test_naming_table_names_are_used_in_the_code():
    code = '\n'.join(p.read_text(encoding='utf-8') for p in (ROOT/'collab_lessons').glob('*.py'))
    for p in NBS.rglob('*.ipynb'):
        nb = json.loads(p.read_text(encoding='utf-8'))
        code += '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code')
    rows = glossary_table('이름')
    names = [n for r in rows for n in re.findall(r'`([A-Za-z_]\w*)`', r[0])]
    assert len(names) >= 15, f"the naming table lists only {len(names)} names"
    unused = [n for n in names if not re.search(rf'\b{n}\b', code)]
    assert not unused, f"names in the glossary's naming table that no notebook or module uses: {unused}"
