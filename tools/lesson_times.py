"""Measure how long each lesson notebook takes on one CPU thread, and state that time in the lessons and the index.

    python tools/lesson_times.py measure [NB ...]  # run each notebook alone, record its time in nbs/lesson_times.json
    python tools/lesson_times.py write [NB ...]    # put the time line atop each lesson's intro, fill the index table

Without NB, both act on every lesson (a numbered notebook with code cells). `write` always rewrites the index table.
Run `nbdev-clean` after `write`.
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
COMMAND = 'OMP_NUM_THREADS=1 nbdev-test --n-workers 1 --flags slow --timing NB'
TIME_LINE = '⏱ 실행 시간: CPU 한 스레드에서 약 {} (측정값, `lesson_times.json`)'
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
    "Numbered notebooks that run code (the glossary has none), in course order."
    return [p for p in sorted(Path(nbs).glob('[0-9][0-9]_*.ipynb'))
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


def load_times(path=TIMES):
    return json.loads(Path(path).read_text(encoding='utf-8')) if Path(path).exists() else {'notebooks': {}}


def run_one(nb):
    "Run `nb` alone with nbdev-test on one thread; return its measurement (seconds from nbdev's --timing line)."
    env = dict(os.environ, OMP_NUM_THREADS='1')
    load_before = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([str(ROOT/'.venv/bin/nbdev-test'), '--n-workers', '1', '--flags', 'slow', '--timing', str(nb)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(rf'^{re.escape(Path(nb).name)}: (\d+) secs$', res.stdout, re.M)
    if res.returncode or not m:
        raise RuntimeError(f'{nb}: nbdev-test failed (exit {res.returncode}), nothing recorded:\n{res.stderr[-2000:]}')
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # nbdev prints whole seconds, rounded down: a lesson that runs in under a second is stated (and recorded) as 1 s
    return dict(seconds=max(1, int(m[1])), date=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%MZ'), command=COMMAND,
                cpu_count=os.cpu_count(), load_before=round(load_before, 2), cpu_seconds=round(cpu, 1),
                wall_seconds=round(wall, 1), other_work=bool(load_before > 0.5 or cpu < 0.85*wall))


def measure(nbs, path=TIMES):
    "Measure each notebook in turn, saving after each so an interrupted run keeps what it has."
    times, failed = load_times(path), []
    times['about'] = ('Seconds each notebook takes from top to bottom under nbdev-test with one torch thread. '
                      'other_work: other programs shared the CPU (1-min load average before > 0.5, or the run got '
                      'under 85% of a core), so the time is likely inflated. Written by tools/lesson_times.py measure.')
    for nb in nbs:
        print(f'Measuring {Path(nb).name} ...', flush=True)
        try: times['notebooks'][Path(nb).name] = entry = run_one(nb)
        except RuntimeError as e:
            print(e, file=sys.stderr); failed.append(nb); continue
        times['notebooks'] = dict(sorted(times['notebooks'].items()))
        Path(path).write_text(json.dumps(times, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
        print(f"  {entry['seconds']} s (cpu {entry['cpu_seconds']} s, load before {entry['load_before']})", flush=True)
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


def with_time_line(text, seconds):
    return TIME_LINE.format(format_time(seconds)) + '\n\n' + drop_old_times(text)


def measured(times, name):
    entry = times['notebooks'].get(name)
    if entry is None: raise SystemExit(f'{name} has no measurement in {TIMES.name}: run `python tools/lesson_times.py measure nbs/{name}` first.')
    return entry['seconds']


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
            '노트북 하나를 위에서 아래로 실행하는 데 걸린 시간이야. `OMP_NUM_THREADS=1`로 CPU 한 스레드에서 잰 값이고'
            '(`tools/lesson_times.py measure`가 `nbs/lesson_times.json`에 남겨), 컴퓨터마다 달라. '
            '"ML-100k 내려받기"는 처음 실행할 때 `untar_data`가 MovieLens 100k를 내려받는다는 뜻이야.', '',
            '| 번호 | 노트북 | 시간 | 데이터 |', '|---|---|---|---|']
    for p in lessons(nbs):
        nb = read_nb(p)
        rows.append(f'| {p.name[:2]} | [{title(nb)}]({p.name}) | {table_time(times, p.name)} | {data_needed(nb)} |')
    return '\n'.join(rows)


def write_index(times, nbs=NBS):
    path = Path(nbs)/'index.ipynb'
    nb = read_nb(path)
    cells, new = nb['cells'], index_table(times, nbs)
    at = next((i for i, c in enumerate(cells) if source(c).startswith(INDEX_HEADING)), None)
    if at is None:  # first time: right after the lesson list
        at = 1 + next(i for i, c in enumerate(cells) if source(c).startswith('## 강의 목록'))
        cells.insert(at, dict(cell_type='markdown', metadata={}, source=[]))
    cells[at]['source'] = new.splitlines(keepends=True)
    write_nb(nb, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('action', choices=['measure', 'write'])
    ap.add_argument('notebooks', nargs='*', type=Path, help='lesson notebooks (default: every lesson)')
    args = ap.parse_args(argv)
    nbs = args.notebooks or lessons()
    for nb in nbs:
        if not nb.exists(): ap.error(f'{nb}: no such notebook')
    folder = nbs[0].parent  # lesson_times.json and index.ipynb live beside the notebooks (a scratch copy works too)
    if args.action == 'measure':
        failed = measure(nbs, folder/TIMES.name)
        if failed: sys.exit(f'not measured (they failed): {", ".join(map(str, failed))}')
    else:
        times = load_times(folder/TIMES.name)
        for nb in nbs: write_intro(nb, times)
        write_index(times, folder)


if __name__ == '__main__':
    main()
