#!/usr/bin/env bash
# man_test.sh MAN_DIR KVD_PATH KVCTL_PATH
#
# The hand-written man pages stay true to the programs:
#   - every long option of `kvd --help` is documented in kvd.8, and every
#     option kvd.8 documents (in a .TP tag) exists;
#   - the same for kvctl.1: global options, every command of `kvctl --help`
#     (and link's hold/release), and each command's own options;
#   - both pages format without warnings (groff -ww), when groff is there.
set -euo pipefail

man_dir=$1
kvd=$2
kvctl=$3
status=0

problem() {
  echo "FAIL: $*"
  status=1
}

# Long options in a help text ("--max-key-bytes", "--json"...).
help_options() { grep -oE -- '(^|[ ,])--[a-z][a-z-]*' | sed 's/^[ ,]*//' | sort -u; }

# Long options in the .TP tags of a page (the line after each .TP/.TQ).
man_options() {
  awk '/^\.(TP|TQ)/ { getline; print }' "$1" | sed 's/\\-/-/g' |
    grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# Every word of the .TP tags (for command names).
man_tags() { awk '/^\.(TP|TQ)/ { getline; print }' "$1" | sed 's/\\-/-/g; s/\\f[BIRP]//g; s/"//g'; }

check_options() {  # page, label, options in help (one per line)
  local page=$1 label=$2 help=$3 opt
  for opt in $(comm -23 <(sort -u <<<"$help" | grep .) <(man_options "$page")); do
    problem "$label $opt is not documented in $(basename "$page")"
  done
}

# --- kvd.8 ----------------------------------------------------------------------------

kvd_help=$("$kvd" --help | help_options)
check_options "$man_dir/kvd.8" "kvd" "$kvd_help"
for opt in $(comm -13 <(echo "$kvd_help") <(man_options "$man_dir/kvd.8")); do
  problem "kvd.8 documents $opt, which kvd --help does not list"
done

# --- kvctl.1 -------------------------------------------------------------------------------

kvctl_help=$("$kvctl" --help)
global=$(sed '/^Subcommands:/,$d' <<<"$kvctl_help" | help_options)
check_options "$man_dir/kvctl.1" "kvctl" "$global"

# "Subcommands:" lines: "  put   Write ...", "  del, delete   Delete KEY".
commands=$(sed -n '/^Subcommands:/,/^$/p' <<<"$kvctl_help" | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
[ -n "$commands" ] || problem "no commands found in kvctl --help"
tags=$(man_tags "$man_dir/kvctl.1")
all_options=$global
for cmd in $commands; do
  grep -qE "^(\.B[IR]? )?$cmd( |$)" <<<"$tags" || problem "kvctl command '$cmd' has no entry in kvctl.1"
  sub_help=$("$kvctl" "$cmd" --help)
  sub_options=$(sed '/^Global options/,$d' <<<"$sub_help" | help_options)
  check_options "$man_dir/kvctl.1" "kvctl $cmd" "$sub_options"
  all_options=$(printf '%s\n%s\n' "$all_options" "$sub_options")
  # Commands of commands (link hold/release, cluster status) and their options.
  for sub in $(sed -n '/^Subcommands:/,/^$/p' <<<"$sub_help" | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p'); do
    grep -qE "^(\.B[IR]? )?$cmd $sub( |$)" <<<"$tags" ||
      problem "kvctl command '$cmd $sub' has no entry in kvctl.1"
    sub_sub_options=$("$kvctl" "$cmd" "$sub" --help | sed '/^Global options/,$d' | help_options)
    check_options "$man_dir/kvctl.1" "kvctl $cmd $sub" "$sub_sub_options"
    all_options=$(printf '%s\n%s\n' "$all_options" "$sub_sub_options")
  done
done
for opt in $(comm -13 <(sort -u <<<"$all_options") <(man_options "$man_dir/kvctl.1")); do
  problem "kvctl.1 documents $opt, which no kvctl --help lists"
done

# --- formatting -------------------------------------------------------------------------------

if command -v groff > /dev/null; then
  for page in kvd.8 kvctl.1; do
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$man_dir/$page" 2>&1) || true
    [ -z "$warnings" ] || problem "groff warns about $page: $warnings"
  done
else
  echo "note: groff not installed; formatting not checked"
fi

[ $status = 0 ] && echo "PASS: kvd.8 and kvctl.1 match kvd --help and kvctl --help"
exit $status
