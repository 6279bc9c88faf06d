#!/bin/bash
# Replaces what lies between the lines <!-- kernel-matrix:begin --> and
# <!-- kernel-matrix:end --> in README.md with the kernel matrix's last
# results (BUILD_DIR/kernel-matrix/results.md, written by run_matrix.sh)
# followed by the end-to-end suite's in the same VMs
# (BUILD_DIR/kernel-matrix/vm-e2e-results.md, run_vm_e2e.sh), when there.
#
# usage: update_readme.sh BUILD_DIR [README]   (README defaults to the repo's)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [README]" >&2
  exit 2
fi
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$1/kernel-matrix/results.md"
e2e_results="$1/kernel-matrix/vm-e2e-results.md"
readme=${2:-$script_dir/../../README.md}
begin='<!-- kernel-matrix:begin -->'
end='<!-- kernel-matrix:end -->'

[[ -s "$results" ]] || { echo "update_readme: no $results: run run_matrix.sh first" >&2; exit 1; }
[[ -f "$readme" ]] || { echo "update_readme: no $readme" >&2; exit 1; }
if [[ $(grep -cxF "$begin" "$readme") != 1 || $(grep -cxF "$end" "$readme") != 1 ]]; then
  echo "update_readme: $readme needs exactly one '$begin' line and one '$end' line" >&2
  exit 1
fi
if (( $(grep -nxF "$begin" "$readme" | cut -d: -f1) > $(grep -nxF "$end" "$readme" | cut -d: -f1) )); then
  echo "update_readme: '$end' comes before '$begin' in $readme" >&2
  exit 1
fi

sources=("$results")
[[ -s "$e2e_results" ]] && sources+=("$e2e_results")
for file in "${sources[@]}"; do
  if grep -q '| FAIL' "$file"; then
    echo "update_readme: warning: $file has failing cells; the README will show them" >&2
  fi
done

tmp=$(mktemp "$readme.XXXXXX")
trap 'rm -f "$tmp"' EXIT
awk -v begin="$begin" -v end="$end" -v results="$(printf '%s\n' "${sources[@]}")" '
  $0 == begin { print; n = split(results, files, "\n")
                for (i = 1; i <= n; i++) { print ""; while ((getline line < files[i]) > 0) print line }
                print ""; skipping = 1; next }
  $0 == end { skipping = 0 }
  !skipping
' "$readme" >"$tmp"
chmod --reference="$readme" "$tmp"
mv "$tmp" "$readme"
trap - EXIT
echo "update_readme: updated the kernel matrix section of $readme"
