# Stage times, sourced by scripts/stack and scripts/test after setting $stages_file
# (target/stages-<script>.jsonl). `stage NAME TITLE` ends the running stage, appending
# its wall seconds to it
# (`{"stage":NAME,"seconds":S}`), prints TITLE with the run's time so far and starts
# NAME; `stage done` ends the last one. `rdma-nix stages` and the matrix page read
# the file (src/report/stages.rs names the stages).
mkdir -p "$(dirname "${stages_file:?set by the script}")"
: >"$stages_file"
_stage_name=""
_stage_t0=$(date +%s.%N)
_run_t0=$_stage_t0
_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
stage() {
  local now
  now=$(date +%s.%N)
  if [ -n "$_stage_name" ]; then
    printf '{"stage":"%s","seconds":%s}\n' "$_stage_name" "$(_since "$_stage_t0" "$now")" >>"$stages_file"
  fi
  _stage_name=$1
  _stage_t0=$now
  if [ "$1" = done ]; then
    _stage_name=""
    echo
    echo "== done in $(_since "$_run_t0" "$now") s"
  else
    echo
    echo "== [$(_since "$_run_t0" "$now") s] $2"
  fi
}
# The VMs Nix runs at a time: max-jobs of the project's settings.
vm_slots() { sed -n 's/^max-jobs *= *//p' scripts/nix/nix.conf; }
