"Every lesson states its run time at the top, the index lists it, and both agree within 2x with nbs/lesson_times.json."
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location('lesson_times', ROOT/'tools'/'lesson_times.py')
lt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lt)
LESSONS = lt.lessons()


def times(): return lt.load_times(lt.TIMES)['notebooks']


def intro_problems(intro, measured_s):
    "What is wrong with the time a lesson's intro states, given the measured seconds (None: not measured)."
    stated = lt.STATED.findall(intro)
    if measured_s is None: return ['no measurement in nbs/lesson_times.json (run tools/lesson_times.py measure)']
    if len(stated) != 1: return [f'{len(stated)} time lines at the top of the intro, expected 1 (run tools/lesson_times.py write)']
    problems = [f'states {stated[0]!r}, measured {measured_s} s'] if not within_2x(lt.parse_time(stated[0]), measured_s) else []
    old = lt.OLD_TIME.search(re.sub(r'^⏱.*', '', intro, flags=re.M))
    return problems + ([f'hand-written time left in the intro: {old[0]!r}'] if old else [])


def within_2x(stated_s, measured_s):
    return measured_s/2 <= stated_s <= measured_s*2


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_lesson_states_its_measured_time(nb):
    book = lt.read_nb(nb)
    intro = lt.source(book['cells'][lt.intro_index(book)])
    entry = times().get(nb.name)
    problems = intro_problems(intro, entry and entry['seconds'])
    assert not problems, f'{nb.name}: ' + '; '.join(problems)


def test_index_table_matches_measurements():
    index = '\n'.join(lt.source(c) for c in lt.read_nb(lt.NBS/'index.ipynb')['cells'])
    rows = {name: when for _, name, when, _ in lt.INDEX_ROW.findall(index)}
    measured = times()
    for nb in LESSONS:
        assert nb.name in rows, f'index.ipynb: no time row for {nb.name} (run tools/lesson_times.py write)'
        assert nb.name in measured, f'{nb.name}: no measurement in nbs/lesson_times.json'
        assert within_2x(lt.parse_time(rows[nb.name]), measured[nb.name]['seconds']), \
            f'index.ipynb states {rows[nb.name]!r} for {nb.name}, measured {measured[nb.name]["seconds"]} s'


def test_index_has_no_hand_written_times():
    prose = [lt.source(c) for c in lt.read_nb(lt.NBS/'index.ipynb')['cells'] if not lt.source(c).startswith(lt.INDEX_HEADING)]
    assert not [p for p in prose if lt.OLD_TIME.search(p)], 'index.ipynb states a time outside the generated table'


def test_measurements_record_how_they_were_taken():
    for name, entry in times().items():
        assert {'seconds', 'date', 'command', 'cpu_count', 'other_work'} <= set(entry), f'{name}: incomplete entry {entry}'


@pytest.mark.parametrize('seconds', [1, 4, 9, 10, 33, 57, 59, 61, 89, 95, 330, 599, 601, 1500])
def test_format_time_reads_back_close(seconds):
    assert abs(lt.parse_time(lt.format_time(seconds)) - seconds) <= max(2.5, 0.1*seconds)


def test_checks_catch_planted_errors():
    good = lt.with_time_line('이번에는 편향을 더해 볼 거야. 학습을 포함해서 CPU 한 코어로 1분쯤 걸려.', 95)
    assert intro_problems(good, 95) == [] and '1분쯤' not in good
    assert intro_problems(good, 250), 'a time 2.6x off must fail'
    assert intro_problems(good, 40), 'a time 2.4x too long must fail'
    assert intro_problems('이번에는 편향을 더해 볼 거야.', 95), 'no stated time must fail'
    assert intro_problems(good, None), 'no measurement must fail'
    assert intro_problems(good + ' CPU에서 2분이면 끝나.', 95), 'a stale hand-written time must fail'
    with pytest.raises(ValueError): lt.parse_time('몇 분')


def test_write_replaces_old_statements(tmp_path):
    nbs = tmp_path/'nbs'
    nbs.mkdir()
    cells = [dict(cell_type='code', source='x = 1', metadata={}, outputs=[], execution_count=None),
             dict(cell_type='markdown', source='# 제목\n\n> An English line.', metadata={}),
             dict(cell_type='markdown', source='소개야. CPU 한 코어로 2~3분 걸려.\n\n둘째 문단이야.', metadata={})]
    lt.write_nb(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5), nbs/'40_bias.ipynb')
    lt.write_nb(dict(cells=[dict(cell_type='markdown', source='## 강의 목록', metadata={})], metadata={}, nbformat=4,
                     nbformat_minor=5), nbs/'index.ipynb')
    (nbs/'lesson_times.json').write_text(json.dumps({'notebooks': {'40_bias.ipynb': {'seconds': 330}}}))
    lt.main(['write', str(nbs/'40_bias.ipynb')])
    intro = lt.source(lt.read_nb(nbs/'40_bias.ipynb')['cells'][2])
    assert intro.startswith('⏱ 실행 시간: CPU 한 스레드에서 약 5분 30초 ') and '2~3분' not in intro and '둘째 문단이야.' in intro
    assert '| 40 | [제목](40_bias.ipynb) | 약 5분 30초 | 없음 |' in lt.source(lt.read_nb(nbs/'index.ipynb')['cells'][1])
