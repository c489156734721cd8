#!/bin/bash
# push95 held-out candidates: attribute_joint on the adapted and frozen galleries, then evaluate + ensemble
set -e
cd /work/wt/push95
PY=/work/main/.venv/bin/python
O=/work/cache/push95
T() { local s=$(date +%s); "$@"; echo "$(date -u +%H:%M:%S) step '$*' took $(( $(date +%s) - s )) s" >> $O/timings.txt; }
T nice -n 19 $PY scripts/train_classifiers.py --gallery /work/cache/finetune/apparel/gallery --out $O/classifiers-adapted --kinds attribute_joint > $O/tc-adapted.log 2>&1
T nice -n 19 $PY scripts/evaluate.py --gallery /work/cache/finetune/apparel/gallery --classifiers $O/classifiers-adapted --methods attribute_joint --out $O/evaluate-adapted-joint.json > $O/ev-adapted.log 2>&1
T nice -n 19 $PY scripts/train_classifiers.py --gallery /work/cache/lead9/gallery --out $O/classifiers-frozen --kinds attribute_joint > $O/tc-frozen.log 2>&1
T nice -n 19 $PY benchmarks/ensemble_eval.py --galleries /work/cache/lead9/gallery /work/cache/finetune/apparel/gallery --classifiers $O/classifiers-frozen $O/classifiers-adapted --kind attribute_joint --out $O/ensemble-joint.json > $O/ens.log 2>&1
echo done >> $O/timings.txt
