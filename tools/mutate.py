"""Mutation pass over the checks of a part of the library: break each check on purpose, run that part's tests, and
report which tests failed (a mutation no test notices is a "survivor"). The module is restored after every mutation.

    .venv/bin/python tools/mutate.py model_files [WORD ...]   # model_files.py and outputs.py; about 20 s per mutation; WORDs pick mutations by description
    .venv/bin/python tools/mutate.py data [WORD ...]          # the data layer: collab_lessons/ratings.py, own_ratings.py and splits.py
    .venv/bin/python tools/mutate.py ranking [WORD ...]       # the ranking metrics (collab_lessons/ranking.py): off-by-one, seen-item leak, MAP and NDCG normalisation
"""
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
MODEL_FILES = [  # (what the change does, text to replace, replacement) in collab_lessons/model_files.py
    ('`model_record` saves NaN weights', 'if bad: raise DivergedError', 'if False: raise DivergedError'),
    ('`_check_info` accepts any `info`', "_need(isinstance(info, dict), path,", "_need(True, path,"),
    ('`n_factors` may be 0 or negative', 'nf >= 1, path', 'nf >= -10**9, path'),
    ('`n_factors` may be a float or bool', 'type(nf) is int and', 'isinstance(nf, (int, float)) and'),
    ('`y_range` order not checked', 'and yr[0] < yr[1], path', ', path'),
    ('`y_range` entries not checked', 'all(map(_is_number, yr))', 'True'),
    ('vocabulary entries not checked', "_need(all(type(v) in (int, str) for v in vocab)", "_need(True"),
    ('empty vocabulary allowed', 'len(vocab) >= 1, path', 'len(vocab) >= 0, path'),
    ('extra or missing weight keys allowed', 'and set(weights) == set(WEIGHT_SHAPES), path', ', path'),
    ('weight dtype not checked', 'w.is_floating_point() and tuple', 'tuple'),
    ('weight shape not checked', "and tuple(w.shape) == shape, path", ", path"),
    ('`seen` dtype not checked', "seen.dtype == torch.long and seen.dim()", "seen.dim()"),
    ('`seen` range not checked', "_need(bool(inside), path,", "_need(True, path,"),
    ('`seen` upper user bound off by one', "seen[:, 0].max() < n_users", "seen[:, 0].max() <= n_users"),
    ('`counts` length not checked', "and tuple(counts.shape) == (n_titles,), path", ", path"),
    ('`counts` may be negative', "_need(bool((counts >= 0).all()), path,", "_need(True, path,"),
    ('`load_model` skips the NaN check', "if bad: raise ModelFileError(f\"{path} holds NaN", "if False: raise ModelFileError(f\"{path} holds NaN"),
    ('a folder as model reads as "not found"', "except IsADirectoryError:\n        inside", "except ZeroDivisionError:\n        inside"),
    ('`_read_bytes` lets other OS errors through', "except (OSError, ValueError) as e:\n        raise ModelFileError(f\"{path} cannot be read", "except ZeroDivisionError as e:\n        raise ModelFileError(f\"{path} cannot be read"),
]

OUTPUTS = [  # (what the change does, text to replace, replacement) in collab_lessons/outputs.py
    ('`check_output_file` accepts a folder', "if path.is_dir(): raise OutputPathError(f\"{path} is a folder: give the path", "if False: raise OutputPathError(f\"{path} is a folder: give the path"),
    ('`_check_parent` ignores a file among the parents', "if not parent.is_dir():\n            raise", "if False:\n            raise"),
    ('`_check_parent` ignores permissions', "if not os.access(parent, os.W_OK | os.X_OK):", "if False:"),
    ('`_probe` ignores OS errors on the name', "except OSError as e: raise OutputPathError", "except ZeroDivisionError as e: raise OutputPathError"),
    ('`check_output_folder` allows other files', "if others: raise OutputPathError", "if False: raise OutputPathError"),
    ('`check_output_folder` allows the current folder', "if path.resolve() in (Path.cwd(), Path(path.resolve().anchor)) or path.name in", "if path.name in"),
    ('`atomic_folder` does not put the old folder back', "if old.exists(): os.replace(old, path)  # put the old folder back", "pass"),
    ('`atomic_folder` leaves its temporary folder', "shutil.rmtree(tmp, ignore_errors=True)", "pass"),
    ('`atomic_folder` writes into the folder itself', "write(tmp)\n", "write(path) if path.exists() else write(tmp)\n"),
    ('`atomic_write` skips the output check', "path = check_output_file(path)", "path = Path(path)"),
]

DATA = [  # (what the change does, module, text to replace, replacement)
    ('_raise_first never raises', 'ratings.py', '        if bad.any():\n            i = int(np.asarray(bad).argmax())', '        if False:\n            i = int(np.asarray(bad).argmax())'),
    ('rating range not checked', 'ratings.py', "checks.append((~df['rating'].between(low, high)", "checks.append((df['rating'] != df['rating']"),
    ('timestamp range not checked', 'ratings.py', '~df.timestamp.between(0, MAX_TIME) |', 'False &'),
    ('repeated pairs not found', 'ratings.py', '    if not (key[1:] == key[:-1]).any(): return np.zeros(len(df), dtype=bool)', '    return np.zeros(len(df), dtype=bool)'),
    ('id range not checked', 'ratings.py', '(~df[col].between(1, MAX_ID), ', '(df[col] != df[col], '),
    ('fractional ids not checked', 'ratings.py', '    return not pd.api.types.is_integer_dtype(col)', '    return False'),
    ('fast path ignores the column count', 'ratings.py', '    ok = df.shape[1] == n_cols and', '    ok = True and'),
    ('careful path ignores the column count', 'ratings.py', '    if wrong.any():\n        i = int(wrong.to_numpy().argmax())', '    if False:\n        i = int(wrong.to_numpy().argmax())'),
    ('UTF-16/NUL not refused', 'ratings.py', "    if data[:2] in (b'\\xff\\xfe', b'\\xfe\\xff') or b'\\x00' in data:", '    if False:'),
    ('latin-1 fallback dropped', 'ratings.py', '        if fallback: return data.decode(fallback)', '        pass'),
    ('non-numbers not named', 'ratings.py', '        bad = values.isna()\n        if bad.any():', '        bad = values.isna()\n        if False:'),
    ('own ratings: infinite ratings pass', 'own_ratings.py', "    checks = [(bad, 'the rating is not a finite number'),", "    checks = [(bad & False, 'the rating is not a finite number'),"),
    ('own ratings: empty ids pass', 'own_ratings.py', '    if bad.any(): raise DataError(f"{path}, line {int(bad.to_numpy().argmax()) + first_line}: the {name} id is empty.', '    if False: raise DataError(f"{path}, line {int(bad.to_numpy().argmax()) + first_line}: the {name} id is empty.'),
    ('own ratings: unknown columns not refused', 'own_ratings.py', '    if missing:\n        raise DataError(f"{path}: cannot tell', '    if False:\n        raise DataError(f"{path}: cannot tell'),
    ('checksum not compared', 'ratings.py', '        if sha256_of(f) != expected:', '        if False:'),
    ('ratings without titles merged silently', 'ratings.py', '    if missing:\n        raise DataError(f"{len(missing)} rated movie id(s)', '    if False:\n        raise DataError(f"{len(missing)} rated movie id(s)'),
    ('repeated title ids pass', 'ratings.py', "(df.movie.duplicated(), 'this movie id is on an earlier line already'),", "(df.movie != df.movie, 'this movie id is on an earlier line already'),"),
    ('fast path skips the header check', 'ratings.py', '        if header and _first_line(path) != header: return None', '        pass'),
    ('fast path splits lines at a lone CR', 'ratings.py', "lineterminator='\\n',", ''),
    ('own ratings: bad timestamps pass', 'own_ratings.py', '    bad = secs.isna()\n    if bad.any(): raise DataError(f"{path}, line {int(bad.to_numpy().argmax()) + first_line}: the timestamp', '    bad = secs.isna()\n    if False: raise DataError(f"{path}, line {int(bad.to_numpy().argmax()) + first_line}: the timestamp'),
    ('valid_pct outside (0, 1) accepted', 'splits.py', '    if not 0 < cut < n:', '    if False:'),
    ('bad batch size accepted', 'splits.py', '    if isinstance(bs, bool) or not isinstance(bs, (int, np.integer)) or bs < 1:', '    if False:'),
    ('NaN ratings reach the loaders', 'splits.py', '        if bad.any(): raise DataError(f"{name}, row', '        if False: raise DataError(f"{name}, row'),
    ('split not seeded like RandomSplitter', 'splits.py', '    torch.manual_seed(seed)', '    pass'),
]

RANKING = [  # (what the change does, module, text to replace, replacement): bugs peers shipped, planted in our metrics
    ('lists of k + 1 items (off by one)', 'ranking.py', "n_items) | excluded, k)", "n_items) | excluded, k + 1)"),
    ('seen items not blocked (leak)', 'ranking.py', "user_item_mask(seen_csr, batch, n_items) | excluded", "excluded.expand(len(batch), -1)"),
    ('MAP@k over |R| instead of min(k, |R|)', 'ranking.py', "denominator = n_rel.clamp(max=k) if", "denominator = n_rel if"),
    ('"precision" divides by |R| (recall)', 'ranking.py', "precision=n_hit / k,", "precision=n_hit / n_rel,"),
]

PARTS = {  # part -> (mutations as (what, file, old, new), tests to run)
    'model_files': ([(w, 'model_files.py', o, n) for w, o, n in MODEL_FILES] + [(w, 'outputs.py', o, n) for w, o, n in OUTPUTS],
                    ['tests/test_model_files.py', 'tests/test_hostile.py']),  # test_cli.py also checks the CLI's side; slower
    'ranking': (RANKING, ['tests/test_ranking_metrics.py']),
    'data': (DATA, ['tests/test_ratings.py', 'tests/test_own_ratings.py', 'tests/test_splits.py', 'tests/test_hostile.py', 'tests/test_properties.py']),
}


def run_tests(tests):
    "Names of the failing tests (empty when all pass)."
    res = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:warnings', '-m', 'not slow', '-p', 'no:cacheprovider',
                          '--no-header', '-rf', *tests], cwd=ROOT, capture_output=True, text=True)
    return [l.split(' ')[1].split('[')[0] for l in res.stdout.splitlines() if l.startswith('FAILED ')] or ([] if res.returncode == 0 else ['(error)'])


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in PARTS: sys.exit(f"usage: tools/mutate.py {{{'|'.join(PARTS)}}} [WORD ...]")
    mutations, tests = PARTS[sys.argv[1]]
    only = sys.argv[2:]  # words that pick some mutations by their description
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a `kill` still restores the module
    rows = []
    for what, name, old, new in mutations:
        if only and not any(w in what for w in only): continue
        module = ROOT/'collab_lessons'/name
        original = module.read_text()
        if original.count(old) != 1: rows.append((what, f'MUTATION NOT APPLIED ({original.count(old)} matches)')); continue
        try:
            module.write_text(original.replace(old, new))
            failed = run_tests(tests)
        finally: module.write_text(original)
        rows.append((what, ', '.join(failed) if failed else 'SURVIVED'))
        print(f'| {rows[-1][0]} | {rows[-1][1]} |', flush=True)
    print(f"\n{sum(r[1] == 'SURVIVED' for r in rows)} of {len(rows)} mutations survived.")


if __name__ == '__main__': main()
