#!/usr/bin/env bash
# Execute every lesson notebook (10-60) from top to bottom into course_run/ and print each step's validation scores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
rm -rf course_run && mkdir -p course_run
for nb in nbs/course/[1-6]*.ipynb; do
  echo "Running $nb ..."
  .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
    --output-dir course_run "$nb" --log-level=WARN
done
.venv/bin/python - <<'PY'
from collab_lessons.course import lesson_scores
now = lesson_scores('course_run').set_index('step')
stored = lesson_scores('nbs/course').set_index('step')
now['stored_mse'] = stored.valid_mse
print('\nValidation scores of every course step (this run, and as stored in nbs/course/):\n')
print(now.reset_index()[['lesson', 'step', 'valid_mse', 'valid_rmse', 'stored_mse']].to_string(index=False))
PY
echo "Executed notebooks are in $(pwd)/course_run/"
