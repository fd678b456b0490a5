#!/usr/bin/env bash
# The action's installer: the release binary of $REF from $REPO, checked against the release's
# sha256 file; when the release has no binary for this runner (or no release exists for the ref),
# `cargo install --locked --git ... --tag`. The binary goes to $RUNNER_TEMP/orgaudit/bin, which
# is added to the PATH of the job's later steps.
set -euo pipefail
: "${REPO:?the repository of the action}" "${REF:?a tag such as v0.2.0}"
dest="${RUNNER_TEMP:-/tmp}/orgaudit"
mkdir -p "$dest/bin"
arch="$(uname -m)-$(uname -s | tr '[:upper:]' '[:lower:]')"
asset="orgaudit-${REF}-${arch}.tar.gz"
# ORGAUDIT_RELEASE_BASE stands in for GitHub in the tests.
base="${ORGAUDIT_RELEASE_BASE:-https://github.com/${REPO}/releases/download}/${REF}"
if curl -fsSL --retry 3 -o "$dest/$asset" "$base/$asset" \
   && curl -fsSL --retry 3 -o "$dest/$asset.sha256" "$base/$asset.sha256"; then
  (cd "$dest" && sha256sum --check --strict "$asset.sha256")
  tar -xzf "$dest/$asset" -C "$dest/bin" orgaudit
else
  echo "::notice title=orgaudit::no release binary $asset for $REF; building it with cargo"
  cargo install --locked --git "https://github.com/${REPO}" --tag "$REF" --root "$dest" orgaudit
fi
echo "$dest/bin" >> "${GITHUB_PATH:-/dev/null}"
"$dest/bin/orgaudit" --version
