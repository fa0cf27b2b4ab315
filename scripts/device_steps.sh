# Sourced by the device scripts (gpu_check.sh, gpu_paths_check.sh): one step of a GPU run.
#   run NAME TIMEOUT LOG COMMAND...   the command's output to LOG (its tail to the console); its exit
#                                     status appended to $SUMMARY; a non-zero one (124: timed out)
#                                     recorded in the array `failed`
failed=()
step() { echo "=== $1 ($(date +%T))"; }
run() {
  local name=$1 limit=$2 log=$3
  shift 3
  step "$name"
  timeout "$limit" "$@" > "$log" 2>&1
  local rc=$?
  tail -25 "$log"
  echo "--- $name: exit $rc" | tee -a "$SUMMARY"
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}
