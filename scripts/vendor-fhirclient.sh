#!/usr/bin/env bash
# Vendor the SMART on FHIR JavaScript client (npm package `fhirclient`, Apache-2.0) into the
# SMART app's static files, so `pip install .` needs no npm and the browser loads no CDN.
# Re-run to update: bump VERSION, run, read the diff, commit.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.6.3
target=cds/smart/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "fhirclient@$VERSION" >/dev/null)
tar -xzf "$work/fhirclient-$VERSION.tgz" -C "$work"
mkdir -p "$target"
# the "pure" build: no polyfills, for current browsers (uses the browser's Web Crypto for PKCE)
cp "$work/package/build/fhir-client.pure.min.js" "$target/fhir-client.min.js"
cp "$work/package/LICENSE" "$target/fhir-client.LICENSE"
# the third-party notice the minified file's first line points to
cp "$work/package/build/fhir-client.pure.min.js.LICENSE.txt" "$target/fhir-client.pure.min.js.LICENSE.txt"
cat > "$target/README.md" <<NOTE
# Vendored: fhirclient $VERSION

\`fhir-client.min.js\` is \`build/fhir-client.pure.min.js\` from the npm package
[fhirclient@$VERSION](https://www.npmjs.com/package/fhirclient/v/$VERSION)
(SMART Health IT, <https://github.com/smart-on-fhir/client-js>), licensed under the
Apache License 2.0 (\`fhir-client.LICENSE\`); the notice of the code it bundles (a Web
Cryptography API shim, MIT) is \`fhir-client.pure.min.js.LICENSE.txt\`. Regenerate with \`bash scripts/vendor-fhirclient.sh\`; do not edit by hand.

sha256: $(sha256sum "$target/fhir-client.min.js" | cut -d' ' -f1)
NOTE
echo "vendored fhirclient $VERSION into $target"
