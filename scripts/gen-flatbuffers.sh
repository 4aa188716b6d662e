#!/bin/sh
# Regenerates src/sandbox/fb/ (TypeScript) from schema/hyperlight.fbs with flatc; it does not touch the codec.
# Usage: scripts/gen-flatbuffers.sh [output-dir]   (default: src/sandbox/fb)
# Needs flatc 2.0.8 (Debian's flatbuffers-compiler) on PATH or in $FLATC.
# flatc 2.0.8 writes <out>/hyperlight/generated/*.ts with extensionless relative imports and
# a partial barrel file; we flatten the files into <out>/, rewrite the imports to the
# `./name.js` form NodeNext needs, type the two `any` parameters flatc 2.0.8 leaves (string
# encodings and union accessors; src/ has no `any`), drop the barrel and add a first line
# naming this script.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/src/sandbox/fb"}
flatc=${FLATC:-flatc}
schema="$root/schema/hyperlight.fbs"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$flatc" --ts -o "$tmp" "$schema"

mkdir -p "$out"
rm -f "$out"/*.ts
for f in "$tmp"/hyperlight/generated/*.ts; do
  name=$(basename "$f")
  {
    printf '%s\n' "// Generated from schema/hyperlight.fbs by scripts/gen-flatbuffers.sh (flatc --ts); do not edit, regenerate."
    sed -E -e "s#from '(\.\./\.\./hyperlight/generated|\.)/([a-z0-9-]+)'#from './\2.js'#" \
      -e 's#optionalEncoding\?:any\)#optionalEncoding?:flatbuffers.Encoding)#' \
      -e 's#<T extends flatbuffers\.Table>\(obj:any\):any\|null#<T>(obj:T):T|null#' \
      -e 's#__union\(obj, this\.bb_pos \+ offset\) :#__union(obj as flatbuffers.Table, this.bb_pos + offset) as T :#' "$f"
  } > "$out/$name"
done

if grep -n '\bany\b' "$out"/*.ts; then
  echo "gen-flatbuffers: untyped 'any' left above" >&2
  exit 1
fi

# No extensionless relative import may survive the rewrite.
if grep -n "from '\.[^']*[^s]'" "$out"/*.ts | grep -v "\.js'" ; then
  echo "gen-flatbuffers: unrewritten relative import(s) above" >&2
  exit 1
fi
