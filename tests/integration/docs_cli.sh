#!/bin/sh
# docs/CLI.md is what scripts/gen-cli-doc makes from the current binary.
cd "$(dirname "$0")/../.."
BIN=${MBTA_STREAM:-build/mbta-stream}
tmp=$(mktemp)
sh scripts/gen-cli-doc "$BIN" > "$tmp"
if diff -u docs/CLI.md "$tmp" > "$tmp.diff"; then
    echo "PASS cli_doc_current"
else
    echo "FAIL cli_doc_current: docs/CLI.md is stale: run scripts/gen-cli-doc > docs/CLI.md"
    head -n 20 "$tmp.diff"
fi
rm -f "$tmp" "$tmp.diff"
