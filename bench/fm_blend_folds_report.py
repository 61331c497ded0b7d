"""Markdown table of `bench/fm_blend_folds.py`'s JSON: RMSE per fold and model, the u1-u5 mean, fit seconds and
fm_blend's fit time as a multiple of the reference (`course`) trained in the same run.
Usage: python bench/fm_blend_folds_report.py [STEM [FOLDER of the run's model files, to record the blend weights]]"""
import json, sys
from pathlib import Path

NAMES = {'fm_blend': '`fm_blend` (ordinal FM + kernel AE, both ways)', 'course': 'reference: `course` (DotProductBias, 5 epochs)',
         'myfm_reg': 'myFM regression, same features', 'myfm_ordinal': 'myFM ordered probit, same features'}


def report(results):
    folds = [f for f in ('u1', 'u2', 'u3', 'u4', 'u5') if f in results]
    models = [m for m in NAMES if all(m in results[f] for f in folds)]
    lines = ['| model | ' + ' | '.join(f'{f}.test RMSE' for f in folds) + ' | mean RMSE | fit s per fold (mean) |',
             '|---|' + '---|' * (len(folds) + 2)]
    for m in models:
        rmse = [results[f][m]['rmse'] for f in folds]
        secs = [results[f][m]['seconds'] for f in folds]
        lines.append(f'| {NAMES[m]} | ' + ' | '.join(f'{r:.4f}' for r in rmse) + f' | {sum(rmse) / len(rmse):.4f} | {sum(secs) / len(secs):.1f} |')
    if 'fm_blend' in models and 'course' in models:
        ratios = [results[f]['fm_blend']['seconds'] / results[f]['course']['seconds'] for f in folds]
        lines += ['', 'fm_blend fit time as x the reference trained just before it on the same fold (both through `collab-lessons train --split uK`): ' +
                  ', '.join(f'{f} {r:.1f}x' for f, r in zip(folds, ratios)) + f'; mean {sum(ratios) / len(ratios):.1f}x.']
    if all('blend_weights' in results[f].get('fm_blend', {}) for f in folds):
        lines += ['', 'Blend weights chosen on each fold\'s own 10% carve-out of uK.base (ordinal FM, item-based AE, user-based AE): ' +
                  '; '.join(f"{f} {results[f]['fm_blend']['blend_weights']}" for f in folds) + '.']
    return '\n'.join(lines)


def add_weights(results, folder):
    "Copy each fold's chosen blend weights from the saved `uK-fm_blend.pt` files in `folder` into `results`."
    from collab_lessons.model_files import load_model
    for fold, row in results.items():
        path = Path(folder)/f'{fold}-fm_blend.pt'
        if 'fm_blend' in row and path.exists(): row['fm_blend']['blend_weights'] = load_model(path).info['blend_weights']
    return results


if __name__ == '__main__':
    stem = sys.argv[1] if len(sys.argv) > 1 else 'bench/results/fm_blend_folds-2026-12-07'
    results = json.loads(Path(stem + '.json').read_text())
    if len(sys.argv) > 2: Path(stem + '.json').write_text(json.dumps(add_weights(results, sys.argv[2]), indent=1))
    print(report(results))
