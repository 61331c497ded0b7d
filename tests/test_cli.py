import json
import re
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import numpy as np
import pandas as pd
import torch

import collab_lessons.cli as cli
import collab_lessons.products as products
from collab_lessons.bias import DotProductBias
from collab_lessons.entry import main
from collab_lessons.errors import EXIT_CODES, KOREAN as _KOREAN
from collab_lessons.model_files import COURSE_FILES, save_model
from collab_lessons.recommend import parse_ratings

TITLES = ['#na#', 'Star Wars (1977)', 'Return of the Jedi (1983)', 'Toy Story (1995)', 'Fargo (1996)', 'Scream (1996)']
USERS = ['#na#', 1, 2, 3]


@pytest.fixture
def model_file(tmp_path):
    import pandas as pd
    torch.manual_seed(0)
    model = DotProductBias(len(USERS), len(TITLES), 3)
    ratings = pd.DataFrame({'user': [1, 1, 2, 3], 'rating': [5, 4, 3, 2],
                            'title': ['Star Wars (1977)', 'Fargo (1996)', 'Toy Story (1995)', 'Scream (1996)']})
    return str(save_model(tmp_path/'model.pt', model, USERS, TITLES, ratings))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e: main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for word in ['course', 'train', 'recommend', 'similar', 'rate', 'exit codes', 'collab-lessons course', '--debug',
                 '130 interrupted']: assert word in out


def test_usage_errors_exit_2(capsys):
    for argv in ([], ['recommend'], ['course', '--dataset', 'ml-1m']):
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2


def test_recommend_table_and_json(capsys, model_file):
    code, out, err = run(capsys, 'recommend', '--user', '1', '-n', '2', '--model', model_file)
    assert code == 0 and 'Top 2 movies for user 1' in out and 'Star Wars' not in out
    code, out, _ = run(capsys, 'recommend', '--user', '1', '-n', '3', '--model', model_file, '--json')
    data = json.loads(out)
    assert data['user'] == 1 and [r['rank'] for r in data['recommendations']] == [1, 2, 3]
    assert not {'Star Wars (1977)', 'Fargo (1996)'} & {r['title'] for r in data['recommendations']}


def test_similar_resolves_case(capsys, model_file):
    code, out, _ = run(capsys, 'similar', 'star wars (1977)', '--min-ratings', '0', '--model', model_file, '--json')
    data = json.loads(out)
    assert code == 0 and data['title'] == 'Star Wars (1977)' and len(data['similar']) == 4


def test_rate_from_arguments_and_file(capsys, tmp_path, model_file):
    f = tmp_path/'mine.txt'
    f.write_text('# my ratings\nToy Story (1995)=4\n\nscream (1996) = 1\n')
    code, out, _ = run(capsys, 'rate', 'Star Wars (1977)=5', '--file', str(f), '--model', model_file, '--json')
    data = json.loads(out)
    assert code == 0 and data['rated'] == {'Star Wars (1977)': 5.0, 'Toy Story (1995)': 4.0, 'Scream (1996)': 1.0}
    assert {r['title'] for r in data['recommendations']} == {'Return of the Jedi (1983)', 'Fargo (1996)'}


def test_error_exit_codes(capsys, tmp_path, model_file):
    code, _, err = run(capsys, 'similar', 'Star Wars', '--model', model_file)
    assert code == EXIT_CODES['unknown_name'] == 5 and 'Did you mean: Star Wars (1977)' in err
    code, _, err = run(capsys, 'recommend', '--user', '42', '--model', model_file)
    assert code == 5 and 'Known user ids run from 1 to 3' in err
    code, _, err = run(capsys, 'recommend', '--user', '1', '--model', str(tmp_path/'none.pt'))
    assert code == EXIT_CODES['model_file'] == 4 and 'collab-lessons course' in err
    code, out, err = run(capsys, 'rate', 'Star Wars (1977)=7', '--model', model_file, '--json')
    assert code == 2 and json.loads(out)['exit_code'] == 2 and 'between 0.5 and 5' in err
    code, _, err = run(capsys, 'rate', '--model', model_file)
    assert code == 2 and 'at least one rating' in err
    code, _, err = run(capsys, 'rate', '--file', str(tmp_path/'none.txt'), '--model', model_file)
    assert code == EXIT_CODES['data'] == 3
    code, _, err = run(capsys, 'train', '--dataset', 'ml-latest-small', '--split', 'u1', '--out', str(tmp_path/'x.pt'))
    assert code == 2 and '--dataset ml-100k' in err


def test_parse_ratings():
    assert parse_ratings(['A=B (2000)=4.5']) == {'A=B (2000)': 4.5}
    with pytest.raises(ValueError, match='TITLE=RATING'): parse_ratings(['Fargo (1996)'])
    with pytest.raises(ValueError, match='TITLE=RATING'): parse_ratings(['=4'])


@pytest.mark.slow
def test_train_on_bundled_data_and_query(capsys, tmp_path):
    path = str(tmp_path/'m.pt')
    code, out, err = run(capsys, 'train', '--dataset', 'ml-latest-small', '--epochs', '1', '--factors', '8', '--out', path, '--json')
    data = json.loads(out)
    assert code == 0 and data['model'] == 'DotProductBias' and 0.5 < data['valid_mse'] < 1.5
    code, out, _ = run(capsys, 'similar', 'Toy Story (1995)', '-n', '3', '--model', path, '--quiet')
    assert code == 0 and out.count('\n') == 5  # heading, column names and 3 rows


def test_console_script_is_declared():
    import tomllib
    from pathlib import Path
    conf = tomllib.loads((Path(__file__).parents[1]/'pyproject.toml').read_text())
    assert conf['project']['scripts']['collab-lessons'] == 'collab_lessons.entry:main'


@pytest.mark.slow
def test_course_on_ml100k_then_recommend_similar_rate(ml100k, capsys, tmp_path):
    out_dir = tmp_path/'out'
    code, out, err = run(capsys, 'course', '--final-only', '--epochs', '1', '--out', str(out_dir), '--json')
    data = json.loads(out)
    assert code == 0 and data['output_folder'] == str(out_dir.resolve())
    assert {'model.pt', 'results.csv', 'results.json', 'valid_mse.png', 'movie_pca.png'} <= {p.name for p in out_dir.iterdir()}
    assert data['results'][0]['step'] == 'weight_decay' and data['results'][0]['valid_mse'] < 1.0
    model = str(out_dir/'model.pt')
    code, out, _ = run(capsys, 'recommend', '--user', '42', '--model', model, '--json')
    recs = [r['title'] for r in json.loads(out)['recommendations']]
    assert code == 0 and len(recs) == 10 and not set(recs) & set(ml100k.title[ml100k.user == 42])
    code, out, _ = run(capsys, 'similar', 'Star Wars (1977)', '--model', model, '--json')
    assert code == 0 and len(json.loads(out)['similar']) == 10
    code, out, _ = run(capsys, 'rate', 'Star Wars (1977)=5', 'Toy Story (1995)=4', 'Fargo (1996)=1', '--model', model, '--json')
    assert code == 0 and 'Star Wars (1977)' not in {r['title'] for r in json.loads(out)['recommendations']}


# ---------------------------------------------------------------- errors: one line in Korean and English

KOREAN = {kind: sentence for kind, sentence in _KOREAN.items()}


def one_line(err, kind):
    "The single stderr line of an error of `kind`, checked for the bilingual format; returns its English part."
    lines = err.splitlines()
    assert len(lines) == 1, err
    head, sep, english = lines[0].partition(' / error: ')
    assert sep and re.fullmatch(r'collab-lessons( \w+)?: 오류: ' + re.escape(KOREAN[kind]), head), lines[0]
    return english


def test_every_error_kind_is_one_bilingual_line(capsys, tmp_path, model_file):
    damaged = tmp_path/'damaged.pt'
    damaged.write_bytes(b'not a model')
    cases = [(['recommend', '--user', '9999', '--model', model_file], 'unknown_name', "Unknown user id '9999'", 5),
             (['similar', 'Star Wars', '--model', model_file], 'unknown_name', 'Did you mean: Star Wars (1977)', 5),
             (['recommend', '--user', '1', '--model', str(damaged)], 'model_file', f'{damaged} is damaged', 4),
             (['rate', '--file', str(tmp_path/'none.txt'), '--model', model_file], 'data', 'none.txt not found', 3),
             (['rate', 'Star Wars (1977)=7', '--model', model_file], 'usage', 'between 0.5 and 5', 2)]
    for argv, kind, detail, code in cases:
        assert run(capsys, *argv)[0] == code == EXIT_CODES[kind]
        code, out, err = run(capsys, *argv)
        assert detail in one_line(err, kind)
        code, out, err = run(capsys, *argv, '--json')
        assert json.loads(out) == dict(error=one_line(err, kind), error_ko=KOREAN[kind], kind=kind, exit_code=code)


def test_debug_prints_the_traceback_instead(capsys, model_file):
    code, out, err = run(capsys, 'recommend', '--user', '9999', '--model', model_file, '--debug')
    assert code == 5 and err.startswith('Traceback (most recent call last):')
    assert err.strip().splitlines()[-1].startswith("collab_lessons.interpret.UnknownNameError: Unknown user id '9999'")
    assert '오류:' not in err


def test_unexpected_error_is_one_line_with_exit_code_1(capsys, model_file, monkeypatch):
    def broken(args): return {}['missing']
    monkeypatch.setitem(cli.COMMANDS, 'recommend', broken)
    code, out, err = run(capsys, 'recommend', '--user', '1', '--model', model_file)
    assert code == EXIT_CODES['error'] == 1 and code not in {v for k, v in EXIT_CODES.items() if k != 'error'}
    assert one_line(err, 'error') == "unexpected KeyError: 'missing'. Rerun with --debug to see the traceback."
    code, out, err = run(capsys, 'recommend', '--user', '1', '--model', model_file, '--debug')
    assert code == 1 and 'Traceback' in err and "KeyError: 'missing'" in err


def test_argument_errors_are_one_bilingual_line(capsys):
    for argv, detail in [(['recommend'], 'one of the arguments --user --all-users is required'),
                         (['similar', 'x', '-n', 'ten'], "argument -n: invalid int value: 'ten'"),
                         (['fly'], "argument COMMAND: invalid choice: 'fly'")]:
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2
        assert detail in one_line(capsys.readouterr().err, 'usage')


def test_disk_full_while_saving_is_one_line_exit_4(capsys, tmp_path, model_file, monkeypatch):
    import errno, os
    from collab_lessons import outputs
    def save_again(args): save_model(tmp_path/'model.pt', DotProductBias(len(USERS), len(TITLES), 3), USERS, TITLES)
    def no_room(*args): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setitem(cli.COMMANDS, 'recommend', save_again)
    monkeypatch.setattr(outputs.os, 'fsync', no_room)
    before = (tmp_path/'model.pt').read_bytes()
    code, out, err = run(capsys, 'recommend', '--user', '1', '--model', model_file)
    assert code == EXIT_CODES['disk_full'] == 4
    assert one_line(err, 'disk_full').startswith(f"Could not save {tmp_path/'model.pt'}: the disk is full")
    assert (tmp_path/'model.pt').read_bytes() == before


@pytest.mark.slow
def test_bench_command_smoke_writes_report(capsys, tmp_path, ml100k):
    "`collab-lessons bench --smoke --scale` runs the whole benchmark path in tiny settings and writes bench.json and the plot (the full tier's one smoke run)."
    assert main(['bench', '--smoke', '--scale', '--out', str(tmp_path), '--json']) == 0
    out = json.loads(capsys.readouterr().out)
    assert out['out'] == str(tmp_path)
    report = json.loads((tmp_path/'bench.json').read_text())
    assert report['smoke'] and {'reference', 'fast', 'bpmf', 'kernel_ae', 'best_blend'} <= set(report['table']['u1-test'])
    assert (tmp_path/'time_vs_rmse.png').stat().st_size > 0
    assert report['scale'] and {'scale_targets', 'read_speed', 'file_to_model'} <= set(report)
    assert set(report['table']) == {'u1-tune', 'u1-test', 'random20'}
    assert report['table']['random20']['reference']['fit_ratio'] == pytest.approx(1.0)
    assert '| `best_blend` |' in (tmp_path/'bench.md').read_text()


def test_bench_command_refuses_zero_repeats(capsys, tmp_path):
    assert main(['bench', '--repeats', '0', '--out', str(tmp_path)]) == EXIT_CODES['usage']
    assert '--repeats' in capsys.readouterr().err and not (tmp_path/'bench.json').exists()


# ---------------------------------------------------------------- checked before any work, nothing good destroyed

@pytest.fixture
def tiny_data(monkeypatch, tiny_ratings):
    "`train` and `course` read `tiny_ratings` instead of a real dataset (a few hundred ratings: seconds to train)."
    monkeypatch.setattr(products, 'load_ratings', lambda name: tiny_ratings)
    return tiny_ratings


def quiet_run(capsys, *argv):
    code, out, err = run(capsys, *argv, '--quiet')
    assert len(err.splitlines()) == (0 if code == 0 else 1), err
    return code, out, err


def test_diverged_run_keeps_the_good_model(capsys, tmp_path, tiny_data):
    good = tmp_path/'m.pt'
    assert quiet_run(capsys, 'train', '--epochs', '1', '--factors', '4', '--out', str(good))[0] == 0
    before = good.read_bytes()
    code, out, err = quiet_run(capsys, 'train', '--epochs', '2', '--factors', '4', '--lr', '1e9', '--out', str(good), '--json')
    assert code == EXIT_CODES['diverged'] == 7 and json.loads(out)['kind'] == 'diverged'
    assert 'Training diverged' in one_line(err, 'diverged')
    assert good.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['m.pt']


@pytest.mark.parametrize('command', ['train', 'course'])
def test_output_paths_are_checked_before_any_training(capsys, tmp_path, monkeypatch, command):
    def no_training(*args, **kwargs): raise AssertionError('trained although the output path is bad')
    monkeypatch.setattr(products, 'load_ratings', no_training)
    (tmp_path/'file').write_text('x')
    (tmp_path/'mine').mkdir()
    (tmp_path/'mine'/'notes.txt').write_text('x')
    bad = {'train': [tmp_path/'file'/'m.pt', tmp_path, tmp_path/('x' * 300)],
           'course': [tmp_path/'file', tmp_path/'file'/'out', tmp_path/'mine']}[command]
    for out in bad:
        code, _, err = quiet_run(capsys, command, '--out', str(out))
        assert code == EXIT_CODES['output'] == 6 and one_line(err, 'output').startswith(('Cannot write', str(out)))
    assert (tmp_path/'file').read_text() == 'x' and sorted(p.name for p in (tmp_path/'mine').iterdir()) == ['notes.txt']


@pytest.mark.parametrize('argv', [
    ['train', '--bs', '0'], ['train', '--bs', '-1'], ['train', '--epochs', '0'], ['train', '--epochs', '-1'],
    ['train', '--factors', '-3'], ['train', '--factors', '0'], ['train', '--lr', '-1'], ['train', '--lr', '0'],
    ['train', '--lr', 'nan'], ['train', '--lr', 'inf'], ['train', '--wd', 'NaN'], ['train', '--wd', '-0.1'],
    ['train', '--lr', '-0.5'], ['train', '--seed', '-1'], ['train', '--seed', str(2**32)], ['train', '--epochs', '1e3'],
    ['course', '--epochs', '0'], ['course', '--epochs', '-5'], ['course', '--epochs', '100001'],
    ['similar', 'x', '--min-ratings', '-1'], ['recommend', '--user', '1', '-n', '0'],
])
def test_numeric_options_are_checked_when_parsed(capsys, argv):
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    detail = one_line(capsys.readouterr().err, 'usage')
    assert f'argument {argv[-2]}: ' in detail and ('must be' in detail or 'invalid int value' in detail)


def test_json_stdout_holds_only_the_json_object(capsys, tmp_path, monkeypatch, tiny_ratings):
    def noisy_download(name):
        print('\u2588\r', end='')  # what fastprogress draws while fastai downloads
        print('downloading ...')
        return tiny_ratings
    monkeypatch.setattr(products, 'load_ratings', noisy_download)
    for extra in ([], ['--quiet']):
        code, out, err = run(capsys, 'train', '--epochs', '1', '--factors', '4', '--out', str(tmp_path/'m.pt'), '--json', *extra)
        assert code == 0 and json.loads(out)['model'] == 'DotProductBias'
        assert ('downloading' in err) == (not extra)  # the noise goes to stderr, or nowhere with --quiet


def test_course_json_and_folder(capsys, tmp_path, tiny_data):
    out = tmp_path/'out'
    code, stdout, _ = quiet_run(capsys, 'course', '--final-only', '--epochs', '1', '--out', str(out), '--json')
    data = json.loads(stdout)
    assert code == 0 and data['files'] == list(COURSE_FILES) and data['results'][0]['wd'] == 0.1
    assert sorted(p.name for p in out.iterdir()) == sorted(COURSE_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']


def test_a_folder_as_model_is_named(capsys, tmp_path, model_file):
    code, _, err = quiet_run(capsys, 'recommend', '--user', '1', '--model', str(tmp_path))
    assert code == 4 and one_line(err, 'model_file') == f"{tmp_path} is a folder, not a model file: pass the model file itself, e.g. {tmp_path/'model.pt'}."


@pytest.mark.parametrize('signame, code', [('SIGTERM', 143), ('SIGHUP', 129)])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(capsys, tmp_path, model_file, monkeypatch, signame, code):
    import os, signal
    from collab_lessons.outputs import atomic_write
    target = tmp_path/'model.pt'
    before = target.read_bytes()
    def signalled_while_saving(args):
        def write(f):
            f.write(b'half a file')
            os.kill(os.getpid(), getattr(signal, signame))
            f.write(b'never reached')
        atomic_write(target, write)
    monkeypatch.setitem(cli.COMMANDS, 'recommend', signalled_while_saving)
    handler = signal.getsignal(signal.SIGTERM)
    got, out, err = quiet_run(capsys, 'recommend', '--user', '1', '--model', model_file, '--json')
    kind = {'SIGTERM': 'terminated', 'SIGHUP': 'hangup'}[signame]
    assert got == code == EXIT_CODES[kind] and json.loads(out)['exit_code'] == code
    assert one_line(err, kind) == f'stopped by {signame}. Files are written whole or not at all; run the command again.'
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['model.pt']
    assert signal.getsignal(signal.SIGTERM) is handler  # the previous handler is back


def test_titles_match_in_any_unicode_form_case_and_spacing(capsys, tmp_path):
    import unicodedata
    titles = ['#na#', 'Misérables, Les (1995)', 'Amélie (2001)', 'Fargo (1996)']
    torch.manual_seed(0)
    path = save_model(tmp_path/'m.pt', DotProductBias(3, len(titles), 3), ['#na#', 1, 2], titles)
    nfd = unicodedata.normalize('NFD', 'Misérables, Les (1995)')
    assert nfd != 'Misérables, Les (1995)'
    for typed in (nfd, nfd.upper(), '  misérables,   les (1995) '):
        code, out, _ = quiet_run(capsys, 'similar', typed, '--min-ratings', '0', '--model', str(path), '--json')
        assert code == 0 and json.loads(out)['title'] == 'Misérables, Les (1995)'
    code, out, _ = quiet_run(capsys, 'rate', unicodedata.normalize('NFD', 'AMÉLIE (2001)=5'), '--model', str(path), '--json')
    assert code == 0 and json.loads(out)['rated'] == {'Amélie (2001)': 5.0}


def test_control_characters_in_names_stay_on_one_line(capsys, tmp_path):
    code, out, err = run(capsys, 'recommend', '--user', '1', '--model', str(tmp_path/'a\x85b.pt'))
    assert code == 4 and f"{tmp_path}/a\\x85b.pt not found" in one_line(err, 'model_file')  # str.splitlines splits at \x85
    with pytest.raises(SystemExit) as e: main(['similar', 'x', '\x07'])
    assert e.value.code == 2 and 'unrecognized arguments: \\x07.' in one_line(capsys.readouterr().err, 'usage')


def test_unreadable_paths_are_errors_not_crashes(capsys, tmp_path, model_file):
    long = str(tmp_path/('x' * 300))
    code, _, err = run(capsys, 'recommend', '--user', '1', '--model', long)
    assert code == 4 and 'cannot be read (File name too long)' in one_line(err, 'model_file')
    code, _, err = run(capsys, 'rate', '--file', long, '--model', model_file)
    assert code == 3 and 'cannot be read (File name too long)' in one_line(err, 'data')


def test_train_on_your_own_ratings_then_recommend(tmp_path, capsys):
    "A CSV of one's own (string ids, own column names, a titles file) -> train -> recommend for a string user id."
    rng = np.random.default_rng(0)
    rows = [(f'cust{u}', f'SKU-{i:03d}', int(rng.integers(1, 6))) for u in range(40) for i in rng.choice(30, 10, replace=False)]
    pd.DataFrame(rows, columns=['customer', 'sku', 'stars']).to_csv(tmp_path/'shop.csv', index=False)
    pd.DataFrame(dict(sku=[f'SKU-{i:03d}' for i in range(30)], title=[f'Product {i}' for i in range(30)])).to_csv(tmp_path/'items.csv', index=False)
    model = tmp_path/'m.pt'
    assert main(['train', '--ratings', str(tmp_path/'shop.csv'), '--items', str(tmp_path/'items.csv'), '--item-col', 'sku',
                 '--epochs', '1', '--out', str(model), '-q', '--json']) == 0
    assert json.loads(capsys.readouterr().out)['dataset'].endswith('shop.csv')
    assert main(['recommend', '--user', 'cust3', '-n', '3', '--model', str(model), '--json']) == 0
    recs = json.loads(capsys.readouterr().out)['recommendations']
    seen = {f'Product {int(s[4:])}' for c, s, _ in rows if c == 'cust3'}
    assert len(recs) == 3 and all(r['title'].startswith('Product ') and r['title'] not in seen for r in recs)


def test_train_own_ratings_options_need_ratings(capsys):
    assert main(['train', '--items', 'items.csv']) == 2
    assert '--ratings PATH' in capsys.readouterr().err


def test_device_option_is_checked_at_parse_time_and_reaches_training(capsys, monkeypatch, tmp_path):
    "`--device` names what is wrong before any work (exit 2), and a good one is passed to `train` and `course` as given."
    with pytest.raises(SystemExit) as e: main(['train', '--device', 'tpu', '--out', str(tmp_path/'m.pt')])
    err = capsys.readouterr().err
    assert e.value.code == EXIT_CODES['usage'] and "argument --device: device='tpu'" in err and not (tmp_path/'m.pt').exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as e: main(['course', '--device', 'cuda', '--out', str(tmp_path/'c')])
        assert e.value.code == EXIT_CODES['usage'] and 'CUDA is not available' in capsys.readouterr().err
    seen = {}
    class Stop(Exception): pass
    def record(name):
        def fake(*args, **kwargs): seen[name] = kwargs.get('device'); raise Stop
        return fake
    monkeypatch.setattr(products, 'run_train_command', record('train'))
    monkeypatch.setattr(products, 'run_course_command', record('course'))
    for command in ('train', 'course'):  # the fakes stop the command once they have seen its device
        main([command, '--device', 'cpu', '--out', str(tmp_path/command), '-q'])
        assert seen.pop(command) == 'cpu'
        main([command, '--out', str(tmp_path/command), '-q'])
        assert seen.pop(command) is None


def test_readme_and_help_list_every_exit_code():
    "The README's exit-code table, `--help`'s list and the errors notebook's table name every code of `EXIT_CODES`, and no other."
    root = Path(__file__).parents[1]
    readme = (root/'README.md').read_text()
    table = readme[readme.index('| code | meaning |'):].split('\n\n')[0]
    in_readme = {int(n) for row in table.splitlines()[2:] for n in re.findall(r'\d+', row.split('|')[1])}
    from collab_lessons.errors import EXIT_HELP
    in_help = {int(n) for n in re.findall(r'\b(\d+) ', EXIT_HELP)}
    nb = json.loads((root/'nbs/reference/08_errors.ipynb').read_text())
    ko = next(''.join(c['source']) for c in nb['cells'] if '| 종료 코드 | 뜻 |' in ''.join(c['source']))
    in_notebook = {int(row.split('|')[1]) for row in ko.splitlines() if re.match(r'\| \d+ \|', row)}
    assert in_readme == in_help == in_notebook == set(EXIT_CODES.values())
