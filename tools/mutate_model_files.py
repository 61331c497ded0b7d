"""Mutation pass over the checks of `collab_lessons/model_files.py`: break each check on purpose, run the tests, and
report which tests failed (a mutation no test notices is a "survivor"). The module is restored after every mutation.

    .venv/bin/python tools/mutate_model_files.py [WORD ...]   # about 20 s per mutation; WORDs pick mutations by description
"""
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
MODULE = ROOT/'collab_lessons'/'model_files.py'
TESTS = ['tests/test_model_files.py', 'tests/test_hostile.py']  # test_cli.py also checks the CLI's side; slower

MUTATIONS = [  # (what the change does, text to replace, replacement)
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


def run_tests():
    "Names of the failing tests (empty when all pass)."
    res = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:warnings', '-m', 'not slow', '-p', 'no:cacheprovider',
                          '--no-header', '-rf', *TESTS], cwd=ROOT, capture_output=True, text=True)
    return [l.split(' ')[1].split('[')[0] for l in res.stdout.splitlines() if l.startswith('FAILED ')] or ([] if res.returncode == 0 else ['(error)'])


def main():
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a `kill` still restores the module
    original = MODULE.read_text()
    rows = []
    try:
        only = sys.argv[1:]  # words that pick some mutations by their description
        for what, old, new in MUTATIONS:
            if only and not any(w in what for w in only): continue
            if original.count(old) != 1: rows.append((what, f'MUTATION NOT APPLIED ({original.count(old)} matches)')); continue
            MODULE.write_text(original.replace(old, new))
            failed = run_tests()
            rows.append((what, ', '.join(failed) if failed else 'SURVIVED'))
            print(f'| {rows[-1][0]} | {rows[-1][1]} |', flush=True)
    finally: MODULE.write_text(original)
    print(f"\n{sum(r[1] == 'SURVIVED' for r in rows)} of {len(rows)} mutations survived.")


if __name__ == '__main__': main()
