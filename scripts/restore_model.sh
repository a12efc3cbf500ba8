#!/usr/bin/env bash
# Take a model folder back out of git history: a model that left models/ (superseded) keeps
# its caffemodel in history forever, and cards that started from it cite models/NAME.
#
#   scripts/restore_model.sh NAME [DEST]    (DEST defaults to models/NAME; make restore NAME=...)
#
# Exit status: 0 restored, 2 bad use (DEST exists, NAME was never committed, a shallow clone).
set -euo pipefail
name=${1:?usage: scripts/restore_model.sh NAME [DEST]}
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$(realpath -m "${2:-$repo/models/$name}")
path="models/$name/$name.caffemodel"
fail() { echo "error: $*" >&2; exit 2; }

[ ! -e "$dest" ] || fail "$dest exists: nothing restored"
cd "$repo"
if git cat-file -e "HEAD:$path" 2>/dev/null; then
  commit=HEAD
else  # the newest commit that touched it removed it: its parent holds the last version
  removed=$(git rev-list -1 HEAD -- "$path")
  [ -n "$removed" ] || fail "$path is not in this clone's git history (a shallow clone? git fetch --unshallow)"
  commit="$removed^"
  git cat-file -e "$commit:$path" 2>/dev/null || fail "$path: its last version is not in this clone's history"
fi
partial="$dest.partial-$$"  # written beside DEST, renamed into place when complete
trap 'rm -rf "$partial"' EXIT
mkdir -p "$partial"
git archive "$commit" "models/$name" | tar -x -C "$partial" --strip-components=2
# the mark that keeps a restored folder out of what tests take for shipped models (tests/test_models.py)
echo "models/$name as of commit $(git rev-parse --short "$commit"), out of git history: not shipped now" \
  > "$partial/RESTORED"
mv -T "$partial" "$dest"
echo "restored $dest from $(git rev-parse --short "$commit") (caffemodel sha256 $(sha256sum "$dest/$name.caffemodel" | cut -c1-64))"
