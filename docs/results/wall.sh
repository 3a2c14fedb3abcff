# Sourced by the study scripts in this folder: run one study command and keep its wall time.
#   keep_wall LABEL TIME_FILE COMMAND...
# runs COMMAND (its report goes to the run folder, so its stdout is dropped), then writes
# "LABEL wall N s (C cores, load L at the end)" to TIME_FILE and to the terminal. A failing
# COMMAND stops the calling script (set -e) before anything is written.
keep_wall() {
    local label=$1 file=$2 start
    shift 2
    start=$(date +%s)
    "$@" > /dev/null
    echo "$label wall $(( $(date +%s) - start )) s ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end)" \
        | tee "$file"
}
