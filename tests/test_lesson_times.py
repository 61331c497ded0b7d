"""Every lesson states its run time at the top, the index lists it, and both agree within 2x with nbs/lesson_times.json.
A lesson's stated time also agrees with its own stored outputs: never below the seconds its training tables and
progress bars show, and within 2x of those seconds plus the measured CPU seconds of its other cells. Lessons are the
course's notebooks (nbs/course/); the library reference states no times."""
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
    rows = {Path(name).name: when for name, when in rows.items() if name.startswith('course/')}
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
    (nbs/'course').mkdir(parents=True)
    cells = [dict(cell_type='code', source='x = 1', metadata={}, outputs=[], execution_count=None),
             dict(cell_type='markdown', source='# 제목\n\n> An English line.', metadata={}),
             dict(cell_type='markdown', source='소개야. CPU 한 코어로 2~3분 걸려.\n\n둘째 문단이야.', metadata={})]
    lt.write_nb(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5), nbs/'course'/'40_bias.ipynb')
    lt.write_nb(dict(cells=[dict(cell_type='markdown', source='## 강의 목록', metadata={})], metadata={}, nbformat=4,
                     nbformat_minor=5), nbs/'index.ipynb')
    (nbs/'lesson_times.json').write_text(json.dumps({'notebooks': {'40_bias.ipynb': {'seconds': 330}}}))
    lt.main(['write', str(nbs/'course'/'40_bias.ipynb')])
    intro = lt.source(lt.read_nb(nbs/'course'/'40_bias.ipynb')['cells'][2])
    assert intro.startswith('⏱ 실행 시간: CPU 한 스레드에서 약 5분 30초 ') and '2~3분' not in intro and '둘째 문단이야.' in intro
    assert '| 40 | [제목](course/40_bias.ipynb) | 약 5분 30초 | 없음 |' in lt.source(lt.read_nb(nbs/'index.ipynb')['cells'][1])


def stated_seconds(nb):
    book = lt.read_nb(nb)
    stated = lt.STATED.findall(lt.source(book['cells'][lt.intro_index(book)]))
    assert len(stated) == 1, f'{nb.name}: {len(stated)} time lines at the top of the intro'
    return lt.parse_time(stated[0])


def output_problems(stated_s, stored_s, rest_s):
    "What contradicts the stored outputs: a stated time under what the outputs show, or over 2x outputs + the rest."
    problems = []
    if stated_s < 0.9*stored_s: problems.append(f'states {stated_s} s, but its stored outputs show {stored_s} s of training')
    if rest_s is None: problems.append('no "stored+rest" measurement (run tools/lesson_times.py measure)')
    elif not within_2x(stated_s, stored_s + rest_s):
        problems.append(f'states {stated_s} s, not within 2x of {stored_s} s shown by the outputs + {rest_s} CPU s of the other cells')
    return problems


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_stated_time_agrees_with_stored_outputs(nb):
    book, entry = lt.read_nb(nb), times().get(nb.name, {})
    stored = lt.stored_seconds(book)
    rest = entry.get('rest_cpu_seconds') if entry.get('rule') == 'stored+rest' else None
    problems = output_problems(stated_seconds(nb), stored, rest)
    if rest is not None and abs(entry['stored_seconds'] - stored) > 1:
        problems.append(f"outputs show {stored} s now, {entry['stored_seconds']} s when measured (run tools/lesson_times.py measure)")
    print(f'{nb.stem}: stated {stated_seconds(nb)} s, outputs {stored} s, rest {rest} CPU s')
    assert not problems, f'{nb.name}: ' + '; '.join(problems)


FASTAI_TABLE = """<table border="1" class="dataframe"><thead><tr style="text-align: left;"><th>epoch</th><th>train_loss</th>
<th>valid_loss</th><th>time</th></tr></thead><tbody><tr><td>0</td><td>1.0</td><td>1.1</td><td>00:27</td></tr>
<tr><td>1</td><td>0.9</td><td>1.0</td><td>01:18</td></tr></tbody></table>"""
SECONDS_TABLE = """<table><thead><tr><th></th><th>step</th><th>seconds</th></tr></thead><tbody>
<tr><th>0</th><td>bias</td><td>67.3</td></tr><tr><th>1</th><td>wd</td><td>69.1</td></tr></tbody></table>"""
BAR = '<div><progress max="7" value="7"></progress> 100.00% [7/7 08:13&lt;00:00]</div>'


def html_cell(*htmls):
    return dict(cell_type='code', outputs=[dict(output_type='display_data', data={'text/html': h}) for h in htmls])


def test_stored_seconds_reads_tables_and_bars():
    assert lt.cell_stored_seconds(html_cell(FASTAI_TABLE)) == 27 + 78
    assert lt.cell_stored_seconds(html_cell(SECONDS_TABLE)) == pytest.approx(136.4)
    assert lt.cell_stored_seconds(html_cell(BAR)) == 493
    assert lt.cell_stored_seconds(html_cell(BAR, SECONDS_TABLE)) == 493, 'a bar and the table of the same work count once'
    assert lt.cell_stored_seconds(html_cell('<table><tr><th>time</th></tr><tr><td>soon</td></tr></table>')) == 0
    assert lt.stored_seconds(dict(cells=[html_cell(FASTAI_TABLE), html_cell(BAR), dict(cell_type='markdown', source=BAR)])) == 105 + 493


def test_output_checks_catch_planted_errors():
    assert output_problems(330, 493.8, 10), "70's old line (5 min 30 s against a 08:13 bar) must fail"
    assert output_problems(240, 35, 30), "20's old line (4 min against 35 s of training, 30 s of rest) must fail"
    assert output_problems(60, 88, None), 'no measurement must fail'
    assert output_problems(510, 493.8, 10) == [] and output_problems(20, 0, 15) == []


def test_write_states_the_rule(tmp_path):
    nbs = tmp_path/'nbs'
    (nbs/'course').mkdir(parents=True)
    cells = [dict(cell_type='markdown', source='# 제목\n\n> An English line.', metadata={}),
             dict(cell_type='markdown', source='소개야.', metadata={}),
             dict(cell_type='code', source='x = 1', metadata={}, outputs=[], execution_count=None)]
    lt.write_nb(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5), nbs/'course'/'70_course.ipynb')
    lt.write_nb(dict(cells=[dict(cell_type='markdown', source='## 강의 목록', metadata={})], metadata={}, nbformat=4,
                     nbformat_minor=5), nbs/'index.ipynb')
    entry = dict(seconds=504, rule='stored+rest', stored_seconds=493.8, rest_cpu_seconds=10.2)
    (nbs/'lesson_times.json').write_text(json.dumps({'notebooks': {'70_course.ipynb': entry}}))
    lt.main(['write', str(nbs/'course'/'70_course.ipynb')])
    intro = lt.source(lt.read_nb(nbs/'course'/'70_course.ipynb')['cells'][1])
    assert intro.startswith('⏱ 실행 시간: CPU 한 스레드에서 약 8분 30초 (저장된 출력의 학습 시간 8분에 나머지 셀의 CPU 시간 10초를 ')
    assert lt.parse_time(lt.STATED.findall(intro)[0]) == 510
    index = lt.source(lt.read_nb(nbs/'index.ipynb')['cells'][1])
    assert '| 70 | [제목](course/70_course.ipynb) | 약 8분 30초 | 없음 |' in index and '예전 방식' not in index


def test_reference_states_no_time():
    "The library reference is for programmers: no lesson time line, and it is not in the index table."
    for nb in sorted((lt.NBS/'reference').glob('*.ipynb')):
        text = '\n'.join(lt.source(c) for c in lt.read_nb(nb)['cells'] if c['cell_type'] == 'markdown')
        assert not lt.STATED.search(text), f'{nb.name}: a reference notebook states a lesson time'
