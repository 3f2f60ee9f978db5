#!/usr/bin/env bash
# Sources tools/ipcctl.bash-completion (without the bash-completion package)
# and checks what it offers: verbs, global and per-verb options, list's
# columns, and no semaphore names when no daemon answers.
#
# usage: completion.sh SCRIPT IPCCTL
. "$(dirname "$0")/common.sh"
# shellcheck disable=SC1090
. "$1"
export IPCD_SOCKET=$scratch/none.sock  # no daemon here

offers() {  # expected-word... -- command line words (the last is the one completed)
  local -a want=()
  while [ "$1" != -- ]; do want+=("$1"); shift; done
  shift
  COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) COMPREPLY=()
  set +eu; _ipcctl; set -eu  # as in an interactive shell
  local w
  for w in "${want[@]}"; do
    [[ " ${COMPREPLY[*]} " == *" $w "* ]] || fail "'$*' offers '${COMPREPLY[*]}', not '$w'"
  done
}
offers status list stat create delete acquire -- ipcctl ""
offers acquire -- ipcctl --socket /x ac
offers --socket --json --help --version -- ipcctl --
offers --noheadings --output -- ipcctl list --
offers name,permits name,available -- ipcctl list -o name,
offers --permits --mode --persist --exist-ok -- ipcctl create db --
offers --force -- ipcctl delete db --
offers --count --timeout --nonblock --conflict-exit-code --no-inherit -- ipcctl acquire db --
COMP_WORDS=("$2" stat "") COMP_CWORD=2 COMPREPLY=()  # asks the (absent) daemon
set +eu; _ipcctl; set -eu
[ ${#COMPREPLY[@]} -eq 0 ] || fail "semaphore names offered with no daemon: ${COMPREPLY[*]}"
echo "bash completion: ok"
