#!/bin/sh
# The git driver for `powercut trace`: `git init` in DIR, then N commits, each acknowledged with
# the commit it made once `git commit` returned.
#
#     driver.sh DIR N none|all
#
# none: core.fsync=none (git syncs nothing). all: core.fsync=all with core.fsyncMethod=fsync
# (git fsyncs every object, pack, ref, the index and the reflogs it writes, before it renames or
# links them into place). Neither fsyncs a directory. The settings (and the author) come from
# the environment, so every git command has them, `git init` included, and the only
# configuration file written is the one `git init` makes.
#
# An acknowledgement is a line `ACK {"cK": "<sha>"}`: after it, commit K is HEAD's K-th commit.
set -eu
dir=$1
n=$2
mode=$3
cd "$dir"
export GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent
export GIT_AUTHOR_NAME=powercut GIT_AUTHOR_EMAIL=powercut@example.invalid
export GIT_COMMITTER_NAME=powercut GIT_COMMITTER_EMAIL=powercut@example.invalid
export GIT_CONFIG_COUNT=3
export GIT_CONFIG_KEY_0=core.fsync GIT_CONFIG_VALUE_0="$mode"
export GIT_CONFIG_KEY_1=core.fsyncMethod GIT_CONFIG_VALUE_1=fsync
export GIT_CONFIG_KEY_2=gc.auto GIT_CONFIG_VALUE_2=0
# Run again on a recovered repository (`explore --generations`), it carries on after the commits
# there: the next acknowledgement names the next commit.
first=1
if [ -d .git ]; then
    first=$(( $(git rev-list --count HEAD 2>/dev/null || echo 0) + 1 ))
fi
git init -q -b main .
i=$first
while [ "$i" -lt "$((first + n))" ]; do
    echo "line $i" >> notes.txt
    git add notes.txt
    git commit -q -m "commit $i"
    echo "ACK {\"c$i\": \"$(git rev-parse HEAD)\"}"
    i=$((i + 1))
done
