#!/bin/sh
# The git check for `powercut explore`: run git's own consistency check on the recovered
# repository, then print the history as the state, one JSON line per commit: {"key": "cK",
# "value": "<sha>"}, the root commit being c1.
#
#     check.sh DIR
#
# No .git, or one git cannot open that holds no branch yet (a `git init` cut short: it promises
# nothing, and running it again completes it), is the empty state. A repository git cannot open
# that has a branch, or that `git fsck --full` finds broken, fails the check (exit 1, with git's
# message). A repository with no commit yet is the empty state.
set -u
cd "$1" || exit 1
[ -e .git ] || exit 0
# Never look above DIR for a repository, and read no user or system configuration.
export GIT_DIR="$PWD/.git" GIT_WORK_TREE="$PWD" GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent
if ! err=$(git rev-parse --git-dir 2>&1 >/dev/null); then
    [ -e .git/refs/heads/main ] || [ -e .git/packed-refs ] || exit 0
    echo "git cannot open the repository: $err" >&2
    exit 1
fi
if ! git rev-parse --verify -q HEAD >/dev/null && ! [ -s .git/refs/heads/main ]; then
    exit 0 # no commit on the branch: the empty state (what was acknowledged is judged)
fi
if ! err=$(git fsck --full --no-progress 2>&1); then
    echo "git fsck --full: $err" >&2
    exit 1
fi
git rev-list --reverse HEAD | awk '{ printf "{\"key\": \"c%d\", \"value\": \"%s\"}\n", NR, $1 }'
