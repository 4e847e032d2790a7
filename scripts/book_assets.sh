#!/usr/bin/env bash
# Fetch the book's browser assets from the npm registry, check them against pinned SHA-256 sums
# and unpack them into $1 (default .web/static), which the book serves from its own _static:
# MathJax 3, the Jupyter widgets HTML manager (renders the explorer) and RequireJS (loads it).
set -euo pipefail
target=${1:-.web/static}
packs=$(mktemp -d)
trap 'rm -rf "$packs"' EXIT
# package@version  sha256 of the npm tarball
pinned="
mathjax@3.2.2 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
@jupyter-widgets/html-manager@1.0.6 6c198ceb99ba7e7526990a1de16e8147ad7d3a714e3fb06741183623c04b5f6e
requirejs@2.3.4 583693b373f6ab0528ea6644fab5cdb5822011c9b5b1ff1615590d5f2f473dcd
"
command -v npm >/dev/null || { echo "book_assets: npm (Node.js) is needed to fetch the book's JavaScript" >&2; exit 1; }
while read -r package sum; do
  [ -n "$package" ] || continue
  name=$(cd "$packs" && npm pack --silent "$package")
  echo "$sum  $packs/$name" | sha256sum --check --quiet \
    || { echo "book_assets: $package does not match its pinned checksum" >&2; exit 1; }
  mkdir -p "$packs/${name%.tgz}" && tar -xzf "$packs/$name" -C "$packs/${name%.tgz}"
done <<< "$pinned"
rm -rf "$target" && mkdir -p "$target/html-manager"
cp -r "$packs"/mathjax-3.2.2/package/es5 "$target/mathjax"
find "$packs"/jupyter-widgets-html-manager-1.0.6/package/dist -maxdepth 1 -type f \
  ! -name '*.map' ! -name 'embed.js' ! -name 'libembed-amd.js' -exec cp {} "$target/html-manager/" \;
cp "$packs"/requirejs-2.3.4/package/require.js "$target/require.js"
