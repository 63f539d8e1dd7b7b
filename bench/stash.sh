#!/bin/sh
# stash.sh WORKSPACE TRASH: move WORKSPACE (if any) into TRASH under a unique name.
# The benchmarks' --prepare step between timed runs: a rename, where `rm -rf` would free
# hundreds of inodes just before the run and make ext4 skip over them (recently_deleted) while
# the run creates its files; bench.py deletes TRASH once all figures are done.
[ -e "$1" ] || exit 0
mkdir -p "$2" && exec mv "$1" "$2/$(date +%s%N)-$$"
