#!/usr/bin/env bash
# release-version.sh TAG: the version a release tag publishes, for .github/workflows/release.yml.
# TAG is v<semver> (v0.1.0, v1.2.3-rc.1) and must match helm/loopscope/Chart.yaml's version
# and appVersion: the image tag, the chart version and the Sentry release
# (loopscope@<version>) are then one name. Prints `version=<semver>` (for $GITHUB_OUTPUT);
# exits 1 with a reason otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART_YAML="${CHART_YAML:-$ROOT/helm/loopscope/Chart.yaml}"

die() {
    printf 'release-version: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: release-version.sh v<version>"
tag="$1"
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ "$tag" =~ $semver ]] || die "tag '$tag' is not v<major>.<minor>.<patch>[-pre]"
version="${tag#v}"

# field NAME: a top-level scalar of Chart.yaml, unquoted.
field() {
    sed -n "s/^$1:[[:space:]]*\"\{0,1\}\([^\"#[:space:]]*\)\"\{0,1\}.*/\1/p" "$CHART_YAML"
}
chart_version="$(field version)"
app_version="$(field appVersion)"
[[ "$chart_version" == "$version" ]] ||
    die "tag $tag, but $CHART_YAML has version: $chart_version (bump it first)"
[[ "$app_version" == "$version" ]] ||
    die "tag $tag, but $CHART_YAML has appVersion: $app_version (bump it first)"
printf 'version=%s\n' "$version"
