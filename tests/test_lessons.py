"Checks on the lesson notebooks themselves: the numbers their Korean prose quotes come from stored outputs."
import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).parents[1]/'nbs'
LESSONS = sorted(NBS.glob('[0-9]*.ipynb'))
# Numbers quoted in prose that are not measured by the notebooks: the seed notebook's historical
# result (fastai of its day), the theoretical share of distinct rows under sampling with replacement,
# and GLocal-K's published u1 RMSE.
NOT_MEASURED = {'0.8166', '0.632', '0.8889'}
NUMBER = re.compile(r'(?<![\d.])\d\.\d{3,4}(?!\d)')


def cells(nb_path, kind):
    return [c for c in json.loads(nb_path.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == kind]


def output_text(cell):
    parts = []
    for out in cell.get('outputs', []):
        data = out.get('data', {})
        parts += [''.join(data.get('text/plain', '')), ''.join(data.get('text/html', '')), ''.join(out.get('text', ''))]
    return '\n'.join(parts)


def stored_numbers():
    "Numbers in the lessons' stored outputs and in the benchmark results the speed lesson reads."
    found = set()
    for nb in LESSONS:
        for cell in cells(nb, 'code'):
            found.update(float(x) for x in re.findall(r'-?\d+\.\d+', output_text(cell)))
    for results in (NBS.parent/'bench'/'results').glob('*.json'):
        found.update(float(x) for x in re.findall(r'-?\d+\.\d+', results.read_text()))
    return found


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_prose_numbers_match_stored_outputs(nb):
    stored = stored_numbers()
    prose = ' '.join(''.join(c['source']) for c in cells(nb, 'markdown'))
    for quoted in set(NUMBER.findall(prose)) - NOT_MEASURED:
        digits = len(quoted.split('.')[1])
        assert any(round(abs(x), digits) == float(quoted) for x in stored), f'{nb.name} quotes {quoted}, found in no stored output'


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_every_code_cell_has_run(nb):
    # A code cell whose last line shows a value must have stored output: the notebook was executed, not typed in.
    for cell in cells(nb, 'code'):
        src = ''.join(cell['source']).strip()
        last = src.splitlines()[-1] if src else ''
        shows_value = last and not last.startswith(('#', 'from ', 'import ', ' ', 'with ', 'assert', 'test_', 'class ', 'def ', 'return', 'warnings.')) \
            and '=' not in last.split('(')[0] and not src.startswith('#| export') and '#| hide' not in src
        if shows_value and not cell.get('outputs'):
            pytest.fail(f'{nb.name}: cell ending in {last!r} has no stored output')


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.name)
def test_prose_names_no_private_functions(nb):
    "nbdev links every backticked name to its docs anchor, and private names (`_x`) have none: the link would be broken."
    private = [m for c in cells(nb, 'markdown') for m in re.findall(r'`(_[A-Za-z]\w*)`', ''.join(c['source']))]
    assert not private, f"{nb.name} backticks private names {private}: describe them in words instead."
