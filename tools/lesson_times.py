"""State how long each lesson notebook takes on one CPU thread, in the lessons and in the index, consistent with the
lesson's own stored outputs.

    python tools/lesson_times.py measure [NB ...]  # record each lesson's time in nbs/lesson_times.json
    python tools/lesson_times.py write [NB ...]    # put the time line atop each lesson's intro, fill the index table

Lessons are the course's notebooks, `nbs/course/NN_topic.ipynb`; the library reference states no times.

The rule (`measure`): a lesson's time = stored + rest.
- stored: the seconds the notebook's own stored outputs show (`stored_seconds`): per code cell, the larger of the
  sum of its tables' `time` (fastai training tables, mm:ss) or `seconds` columns and its fastprogress bars' elapsed
  times; summed over the cells. These are the wall times of the run that saved the outputs, as the learner sees them.
- rest: the CPU seconds (user+sys) of one single-threaded run (`OMP_NUM_THREADS=1`) of everything else: the notebook
  executed in a fresh process with the timed cells skipped and every other cell run, `#| slow` ones included. CPU
  seconds count only this process's work, so other programs on the machine barely change them; cells that fail
  because a skipped cell did not run are listed in `rest_errors` (they stop early, so `rest` is then a lower bound).
  `measure --full` runs the timed cells too and subtracts their CPU seconds (per cell, from `getrusage`): slower, but
  nothing fails; use it where a failing cell does real work (50's seed-spread cell trains four models).
So the stated time never contradicts a training table or progress bar on the page: it is at least their sum. The
stored times themselves were recorded beside other work; an idle machine may be faster.

Entries without this rule (older `measure` runs: wall time of `nbdev-test --flags slow --timing`) keep their
`seconds`. Without NB, both actions act on every lesson (a numbered course notebook with code cells). `write` always
rewrites the index table. Run `nbdev-clean` after `write`.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
TIMES = NBS/'lesson_times.json'
COMMAND = 'OMP_NUM_THREADS=1 nbdev-test --n-workers 1 --flags slow --timing NB'  # the older rule's command
REST_COMMAND = 'OMP_NUM_THREADS=1 python tools/lesson_times.py rest NB  # CPU seconds, timed cells skipped'
TIME_LINE = '⏱ 실행 시간: CPU 한 스레드에서 약 {} (측정값, `lesson_times.json`)'  # older rule (wall time)
STORED_LINE = ('⏱ 실행 시간: CPU 한 스레드에서 약 {} (저장된 출력의 학습 시간 {}에 나머지 셀의 CPU 시간 {}{} 더한 값, '
               '`lesson_times.json`)')
CPU_LINE = '⏱ 실행 시간: CPU 한 스레드에서 약 {} (셀을 모두 실행한 CPU 시간, `lesson_times.json`)'  # no timed outputs
STATED = re.compile(r'^⏱ 실행 시간: CPU 한 스레드에서 약 ((?:\d+분)?(?: ?\d+초)?) ', re.M)
# An older, hand-written time sentence in an intro, e.g. "학습을 포함해서 CPU 한 코어로 1분쯤 걸려.", "CPU에서 1분이면 끝나."
OLD_TIME = re.compile(r'(?:CPU|코어|스레드)[^.]*?(?:\d+(?:~\d+)?\s*(?:분|초)|몇\s*(?:초|분))[^.]*?(?:걸려|걸린|끝나|돼)')
INDEX_HEADING = '## 실행 시간과 필요한 데이터'
INDEX_ROW = re.compile(r'^\| (\d+) \| \[[^\]]*\]\(([^)]+)\) \| 약 ([^|]+?) \| ([^|]+) \|$', re.M)
DATA = {  # what a notebook's code needs, found by these strings in its code cells
    'ML-100k 내려받기': ("'ml-100k'", 'URLs.ML_100k', 'ml100k_path(', 'load_split(', 'bench_splits(', ' bench('),  # bench runs on ML-100k
    '번들 ml-latest-small': ("'ml-latest-small'",),
    '합성 데이터': ('synthetic_ratings(', 'scale_one('),
}


def read_nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))


def write_nb(nb, path):
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')


def source(cell): return ''.join(cell['source'])


def lessons(nbs=NBS):
    "The course's numbered notebooks (`nbs/course/NN_topic.ipynb`) that run code, in course order."
    return [p for p in sorted((Path(nbs)/'course').glob('[0-9][0-9]_*.ipynb'))
            if any(c['cell_type'] == 'code' for c in read_nb(p)['cells'])]


def format_time(seconds):
    "Korean duration rounded for reading: whole seconds under 10 s, 5 s steps under a minute, half minutes under ten, whole minutes above."
    if seconds < 9.5: return f'{max(1, round(seconds))}초'
    if seconds < 57.5: return f'{round(seconds/5)*5}초'
    if seconds < 600:
        half = round(seconds/30)
        return f'{half//2}분' + (' 30초' if half % 2 else '')
    return f'{round(seconds/60)}분'


def parse_time(text):
    "Seconds in a duration written by `format_time`, e.g. '1분 30초' -> 90."
    m = re.fullmatch(r'(?:(\d+)분)? ?(?:(\d+)초)?', text.strip())
    if not m or not any(m.groups()): raise ValueError(f'not a duration: {text!r} (expected e.g. "40초", "2분 30초")')
    return int(m[1] or 0)*60 + int(m[2] or 0)


CLOCK = re.compile(r'^(?:(\d+):)?(\d{1,2}):(\d\d)$')  # fastai/fastprogress: mm:ss or h:mm:ss
BAR = re.compile(r'\[\d+/\d+ ((?:\d+:)?\d{1,2}:\d\d)(?:<|&lt;)')  # fastprogress: [7/7 08:13<00:00]


def clock_seconds(text):
    "Seconds in a fastai/fastprogress clock, '08:13' -> 493; None when `text` is not one."
    m = CLOCK.match(text.strip())
    return int(m[1] or 0)*3600 + int(m[2])*60 + int(m[3]) if m else None


def table_seconds(html):
    "Sum of the `time` (mm:ss) and `seconds` columns of the HTML tables in `html` (fastai training tables, DataFrames)."
    total = 0.
    for table in re.findall(r'<table.*?</table>', html, flags=re.S):
        rows = [re.findall(r'<t[hd][^>]*>(.*?)</t[hd]>', r, flags=re.S) for r in re.findall(r'<tr.*?</tr>', table, flags=re.S)]
        head = next((i for i, r in enumerate(rows) if {'time', 'seconds'} & {c.strip() for c in r}), None)
        if head is None: continue
        cols = [j for j, c in enumerate(rows[head]) if c.strip() in ('time', 'seconds')]
        for row in rows[head + 1:]:
            for j in cols:
                if j >= len(row): continue
                v = row[j].strip()
                sec = clock_seconds(v) if rows[head][j].strip() == 'time' else (float(v) if re.fullmatch(r'\d+(?:\.\d+)?', v) else None)
                total += sec or 0
    return total


def cell_stored_seconds(cell):
    "Seconds a code cell's stored outputs show: the larger of its tables' time columns and its progress bars."
    tables, bars = 0., 0.
    for out in cell.get('outputs', []):
        html = ''.join(out.get('data', {}).get('text/html', ''))
        tables += table_seconds(html)
        bars = max([bars] + [clock_seconds(b) for b in BAR.findall(html)])
    return max(tables, bars)


def stored_seconds(nb):
    "Seconds shown by the stored outputs of notebook `nb` (a dict), summed over its code cells."
    return round(sum(cell_stored_seconds(c) for c in nb['cells'] if c['cell_type'] == 'code'), 1)


def timed_cell_ids(nb):
    return {c.get('id') for c in nb['cells'] if c['cell_type'] == 'code' and cell_stored_seconds(c) > 0}


def run_rest(nb_path, skip_timed=True):
    """Execute `nb_path` in this process as nbdev-test would, `#| slow` cells included. With `skip_timed` the timed
    cells are skipped (cells that then fail are listed); without, they run and their CPU seconds are returned so the
    caller can subtract them. Returns {'failed': [cell ids], 'timed_cpu': seconds}."""
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    nb_path = Path(nb_path).resolve()
    timed = timed_cell_ids(read_nb(nb_path))
    nb = NBProcessor(nb_path, rm_directives=False, process=True).nb
    skip = _skip_cell(nb, ['notest'], [])
    failed, timed_cpu, start = [], [0.], [0.]
    k = CaptureShell(nb_path)
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))

    def pre(cell):
        if skip(cell) or (skip_timed and cell.get('id') in timed): return True
        start[0] = cpu()
        return False

    def post(cell):
        if cell.get('id') in timed: timed_cpu[0] += cpu() - start[0]
        if k.exc: failed.append(cell.get('id')); k.exc = None
    os.environ['IN_TEST'] = '1'
    with working_directory(nb_path.parent):
        k.run_all(nb, exc_stop=False, preproc=pre, postproc=post)
    return dict(failed=failed, timed_cpu=round(timed_cpu[0], 1))


def measure_rest(nb, skip_timed=True):
    "CPU seconds (user+sys) of `run_rest` on `nb` in a fresh single-threaded Python process, less its timed cells' CPU."
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')
    load_before = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, 'rest' if skip_timed else 'rest-full', str(nb)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode: raise RuntimeError(f'{nb}: the run failed (exit {res.returncode}), nothing recorded:\n{res.stderr[-2000:]}')
    run = json.loads(res.stdout.strip().splitlines()[-1])
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime) - run['timed_cpu']
    stored = stored_seconds(read_nb(nb))
    return dict(seconds=round(stored + cpu), rule='stored+rest', stored_seconds=stored, rest_cpu_seconds=round(cpu, 1),
                rest_mode='timed cells skipped' if skip_timed else 'full run, timed cells\' CPU subtracted',
                rest_errors=run['failed'], date=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%MZ'),
                command=REST_COMMAND if skip_timed else 'OMP_NUM_THREADS=1 python tools/lesson_times.py rest-full NB  # CPU seconds, timed cells\' CPU subtracted',
                cpu_count=os.cpu_count(), load_before=round(load_before, 2), wall_seconds=round(wall, 1),
                other_work=bool(load_before > 0.5 or cpu < 0.85*wall))


def load_times(path=TIMES):
    return json.loads(Path(path).read_text(encoding='utf-8')) if Path(path).exists() else {'notebooks': {}}


def measure(nbs, path=TIMES, full=False):
    "Measure each notebook in turn, saving after each so an interrupted run keeps what it has."
    times, failed = load_times(path), []
    times['about'] = ('seconds: the time each lesson states. rule "stored+rest": stored_seconds (what the notebook\'s '
                      'stored outputs show: training tables\' time columns, progress bars, seconds columns) plus '
                      'rest_cpu_seconds (user+sys CPU seconds of one single-threaded run of every other cell, timed '
                      'cells skipped; rest_errors lists cells that failed without them). Entries without a rule: '
                      'wall seconds under nbdev-test with one torch thread (cpu_seconds beside them). other_work: '
                      'other programs shared the CPU (1-min load average before > 0.5, or the run got under 85% of a '
                      'core): it inflates wall seconds, much less CPU seconds. Written by tools/lesson_times.py measure.')
    for nb in nbs:
        print(f'Measuring {Path(nb).name} ...', flush=True)
        try: times['notebooks'][Path(nb).name] = entry = measure_rest(nb, skip_timed=not full)
        except RuntimeError as e:
            print(e, file=sys.stderr); failed.append(nb); continue
        times['notebooks'] = dict(sorted(times['notebooks'].items()))
        Path(path).write_text(json.dumps(times, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
        print(f"  {entry['seconds']} s = stored {entry['stored_seconds']} s + rest {entry['rest_cpu_seconds']} CPU s "
              f"(wall {entry['wall_seconds']} s, load before {entry['load_before']}, failed cells {entry['rest_errors']})", flush=True)
    return failed


def intro_index(nb):
    "Index of a lesson's Korean intro: the first markdown cell after the `# title` cell."
    cells = nb['cells']
    title = next(i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and source(c).startswith('# '))
    return next(i for i in range(title + 1, len(cells)) if cells[i]['cell_type'] == 'markdown')


def drop_old_times(text):
    "`text` without the time line and without hand-written time sentences."
    text = re.sub(r'^⏱.*\n*', '', text, flags=re.M)
    keep = lambda line: ' '.join(s for s in re.split(r'(?<=[.!?]) +', line) if not OLD_TIME.search(s))
    return '\n'.join(keep(line) for line in text.split('\n')).strip()


def time_line(entry):
    "The lesson's time line for its `lesson_times.json` entry (or bare seconds: the older rule)."
    if isinstance(entry, dict) and entry.get('rule') == 'stored+rest':
        if not entry['stored_seconds']: return CPU_LINE.format(format_time(entry['seconds']))
        rest = format_time(entry['rest_cpu_seconds'])
        return STORED_LINE.format(format_time(entry['seconds']), format_time(entry['stored_seconds']), rest,
                                  '을' if (ord(rest[-1]) - 0xAC00) % 28 else '를')  # 분을, 초를
    return TIME_LINE.format(format_time(entry['seconds'] if isinstance(entry, dict) else entry))


def with_time_line(text, entry):
    return time_line(entry) + '\n\n' + drop_old_times(text)


def measured(times, name):
    entry = times['notebooks'].get(name)
    if entry is None: raise SystemExit(f'{name} has no measurement in {TIMES.name}: run `python tools/lesson_times.py measure nbs/course/{name}` first.')
    return entry


def table_time(times, name):
    "Time cell of the index table; '측정 전' (not measured yet) fails tests/test_lesson_times.py until `measure` runs."
    return f"약 {format_time(times['notebooks'][name]['seconds'])}" if name in times['notebooks'] else '측정 전'


def write_intro(nb_path, times):
    nb = read_nb(nb_path)
    cell = nb['cells'][intro_index(nb)]
    new = with_time_line(source(cell), measured(times, Path(nb_path).name))
    if new != source(cell):
        cell['source'] = new.splitlines(keepends=True)
        write_nb(nb, nb_path)


def data_needed(nb):
    "Korean label of the data `nb`'s code loads."
    code = '\n'.join(source(c) for c in nb['cells'] if c['cell_type'] == 'code' and not re.search(r'#\| (?:export|eval: false)', source(c)))
    return ', '.join(label for label, keys in DATA.items() if any(k in code for k in keys)) or '없음'


def title(nb):
    return next(source(c) for c in nb['cells'] if source(c).startswith('# ')).splitlines()[0][2:].strip()


def index_table(times, nbs=NBS):
    rows = [INDEX_HEADING, '',
            '노트북 하나를 위에서 아래로 실행하는 데 걸리는 시간이야. 노트북에 저장된 출력이 보여 주는 시간(학습 표의 '
            '`time` 열, 진행 막대의 경과 시간)을 모두 더하고, 나머지 셀을 `OMP_NUM_THREADS=1`로 CPU 한 스레드에서 '
            '실행한 CPU 시간(user+sys)을 더한 값이야. 그래서 노트북의 학습 표보다 짧게 적히는 일은 없어. 저장된 출력은 '
            '다른 작업과 함께 돌던 컴퓨터에서 기록돼서, 한가한 컴퓨터에서는 더 빨리 끝날 수 있어. '
            '(`tools/lesson_times.py measure`가 `nbs/lesson_times.json`에 남기고, 컴퓨터마다 달라.) '
            '"ML-100k 내려받기"는 처음 실행할 때 `untar_data`가 MovieLens 100k를 내려받는다는 뜻이야.', '',
            '| 번호 | 노트북 | 시간 | 데이터 |', '|---|---|---|---|']
    older = [p.name[:2] for p in lessons(nbs) if times['notebooks'].get(p.name, {}).get('rule') != 'stored+rest']
    numbers = [p.name[:2] for p in lessons(nbs)]
    if older: rows[2] += (' 다만 ' + (f'{older[0]}번부터 {older[-1]}번까지는' if older == numbers[-len(older):] else f'{", ".join(older)}번은')
                          + ' 아직 예전 방식으로, 노트북 전체를 한 번 실행한 경과 시간을 적었어'
                          '(다른 작업과 함께 돌아서 실제보다 길 수 있어).')
    for p in lessons(nbs):
        nb = read_nb(p)
        rows.append(f'| {p.name[:2]} | [{title(nb)}](course/{p.name}) | {table_time(times, p.name)} | {data_needed(nb)} |')
    return '\n'.join(rows)


def write_index(times, nbs=NBS):
    path = Path(nbs)/'index.ipynb'
    nb = read_nb(path)
    cells, new = nb['cells'], index_table(times, nbs)
    at = next((i for i, c in enumerate(cells) if source(c).startswith(INDEX_HEADING)), None)
    if at is None:  # first time: right after the lesson list
        at = 1 + next(i for i, c in enumerate(cells) if source(c).startswith(('## 강의\n', '## 강의 목록')))
        cells.insert(at, dict(cell_type='markdown', metadata={}, source=[]))
    cells[at]['source'] = new.splitlines(keepends=True)
    write_nb(nb, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('action', choices=['measure', 'write', 'rest', 'rest-full'], help='rest, rest-full: internal, one run for `measure`')
    ap.add_argument('--full', action='store_true', help='measure: run the timed cells too and subtract their CPU seconds '
                    '(slower; for lessons whose later cells fail without them)')
    ap.add_argument('notebooks', nargs='*', type=Path, help='lesson notebooks (default: every lesson)')
    args = ap.parse_intermixed_args(argv)
    nbs = args.notebooks or lessons()
    for nb in nbs:
        if not nb.exists(): ap.error(f'{nb}: no such notebook')
    folder = nbs[0].parent.parent  # lesson_times.json and index.ipynb live in nbs/, the lessons in nbs/course/ (a scratch copy works too)
    if args.action in ('rest', 'rest-full'):
        if len(nbs) != 1: ap.error(f'{args.action} takes exactly one notebook')
        print(json.dumps(run_rest(nbs[0], skip_timed=args.action == 'rest')))
    elif args.action == 'measure':
        failed = measure(nbs, folder/TIMES.name, full=args.full)
        if failed: sys.exit(f'not measured (they failed): {", ".join(map(str, failed))}')
    else:
        times = load_times(folder/TIMES.name)
        for nb in nbs: write_intro(nb, times)
        write_index(times, folder)


if __name__ == '__main__':
    main()
