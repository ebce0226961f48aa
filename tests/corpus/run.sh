#!/usr/bin/env bash
# Compare `trawl check config` with Prometheus 3.x's verdicts (verdicts.tsv).
#
# usage: run.sh TRAWL_BIN PROMETHEUS_CHECKOUT_DIR [REAL_WORLD_DIR]
#
#   TRAWL_BIN                the trawl binary (copy it first if it may be rebuilt meanwhile)
#   PROMETHEUS_CHECKOUT_DIR  a plain Prometheus source tree (no git needed), e.g.
#                              mkdir -p /tmp/prom && git -C <prometheus clone or mirror> \
#                                archive HEAD config documentation | tar -x -C /tmp/prom
#   REAL_WORLD_DIR           the real-world files, named <owner>__<repo>__<path, / -> __>[.yml]
#                            (default /tmp/corpus/real; rows are skipped when it is missing)
#
# env: CORPUS_MODE=agent   compare with column 5 (3.x in agent mode) instead of column 3
#      CORPUS_TIMEOUT=20   seconds per file
#
# Exit status 0 accepts, anything else refuses. Each file is checked from its own
# directory, as promtool does. Prints one line per disagreement, then the summary.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 TRAWL_BIN PROMETHEUS_CHECKOUT_DIR [REAL_WORLD_DIR]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
trawl=$1
case $trawl in /*) ;; *) trawl=$(pwd)/$trawl ;; esac
prom=$(cd "$2" && pwd) || exit 2
real=${3:-/tmp/corpus/real}
col=3
[ "${CORPUS_MODE:-server}" = agent ] && col=5
tmo=${CORPUS_TIMEOUT:-20}

n=0; agree=0; acc=0; acc_exp=0; rej=0; rej_exp=0; wacc=0; wrej=0; skipped=0
while IFS=$'\t' read -r source path exp_server why exp_agent; do
  case $source in ''|'#'*) continue ;; esac
  if [ "$col" = 5 ]; then expected=$exp_agent; else expected=$exp_server; fi
  case $source in
    real-world)
      f=${path//\//__}; f=${f//:/__}
      case $f in *.yml) ;; *) f=$f.yml ;; esac
      file=$real/$f ;;
    *) file=$prom/$path ;;
  esac
  if [ ! -f "$file" ]; then
    skipped=$((skipped + 1)); continue
  fi
  n=$((n + 1))
  out=$(cd "$(dirname "$file")" && timeout "$tmo" "$trawl" check config "$(basename "$file")" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then got=accept; else got=reject; fi
  if [ "$expected" = accept ]; then acc_exp=$((acc_exp + 1)); else rej_exp=$((rej_exp + 1)); fi
  if [ "$got" = "$expected" ]; then
    agree=$((agree + 1))
    if [ "$got" = accept ]; then acc=$((acc + 1)); else rej=$((rej + 1)); fi
  else
    if [ "$got" = accept ]; then wacc=$((wacc + 1)); kind="WRONG ACCEPT"; else wrej=$((wrej + 1)); kind="WRONG REJECT"; fi
    first=$(printf '%s\n' "$out" | grep -v -e '^Checking' -e '^[[:space:]]*$' | grep -m1 -i -e 'FAILED' -e 'error' -e 'valid')
    [ $rc -eq 124 ] && first="(timed out after ${tmo}s)"
    printf '%s\t%s:%s\texpected %s (%s)\ttrawl: %s\n' "$kind" "$source" "$path" "$expected" "$why" "${first:-exit $rc}"
  fi
done < "$here/verdicts.tsv"

echo "$n files, $agree agree (accept $acc/$acc_exp, reject $rej/$rej_exp), wrong accepts $wacc, wrong rejects $wrej$( [ $skipped -gt 0 ] && echo " (skipped, file missing: $skipped)")"
[ $wacc -eq 0 ] && [ $wrej -eq 0 ]
