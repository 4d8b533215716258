#!/usr/bin/env bash
# The programs outside Python that `make test` and `make dev` need, installed when missing.
#
# As root (CI, a fresh container, a developer's VM) the missing Debian packages are installed
# with apt-get; otherwise the script stops and names each missing package, so a new user sees
# at once what to install. Both README commands call it; nothing else installs system packages.
#
#   tools/ensure_system_deps.sh test   # what `make test` needs
#   tools/ensure_system_deps.sh kafka  # a JVM and Maven, for the Apache Kafka jars
#   tools/ensure_system_deps.sh dev    # what `make dev` needs (a JVM is optional there:
#                                      # without one it falls back to an embedded broker)
set -euo pipefail
purpose="${1:-test}"

# program on PATH -> Debian package that provides it
declare -A test_needs=(
  [java]=default-jre-headless      # the Apache Kafka broker the tests start (KRaft)
  [mvn]=maven                      # fetches the Kafka jars from Maven Central
  [espeak-ng]=espeak-ng            # speaks the test dictations
  [prometheus]=prometheus          # the real-Prometheus scrape test
  [promtool]=prometheus            # alert-rule unit tests
  [kcat]=kcat                      # a librdkafka client reads the dev broker's topics
  [wrk]=wrk                        # the benchmark harness smoke test
  [redis-server]=redis-server      # the benchmark's Celery/Redis reference app
)
declare -A kafka_needs=(
  [java]=default-jre-headless
  [mvn]=maven
)

case "$purpose" in
  test) declare -n needs=test_needs ;;
  kafka | dev) declare -n needs=kafka_needs ;;
  *) echo "usage: $0 test|kafka|dev" >&2; exit 2 ;;
esac

# kustomize renders k8s/ for the deployment tests (tests/unit/deploy/): `kustomize` or
# `kubectl kustomize` on PATH will do. Neither is a Debian package: with Go it is built from
# the Go module proxy into build/tools/bin (git-ignored; the tests look there too).
KUSTOMIZE_VERSION=v5.7.1
script_dir="${BASH_SOURCE[0]%/*}"
[[ "$script_dir" == "${BASH_SOURCE[0]}" ]] && script_dir=.
kustomize_bin="$(cd "$script_dir/.." && pwd)/build/tools/bin"
kustomize_missing=0
if [[ "$purpose" == test ]] && ! command -v kustomize >/dev/null 2>&1 \
  && ! kubectl kustomize --help >/dev/null 2>&1 && [[ ! -x "$kustomize_bin/kustomize" ]]; then
  if command -v go >/dev/null 2>&1; then
    echo "== installing kustomize $KUSTOMIZE_VERSION into $kustomize_bin (go install)" >&2
    GOBIN="$kustomize_bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  else
    kustomize_missing=1
    {
      echo "missing for \`make test\`: kustomize (renders k8s/ in tests/unit/deploy)"
      echo "install kubectl (it has \`kubectl kustomize\`), or Go and then:"
      echo "  GOBIN=$kustomize_bin go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    } >&2
  fi
fi

missing=()
for program in "${!needs[@]}"; do
  command -v "$program" >/dev/null 2>&1 || missing+=("${needs[$program]}")
done
# one name per package, stable order
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if ((${#missing[@]} == 0)); then
  exit "$kustomize_missing"
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # Debian's packages start their own services; the tests and `make dev` run their own.
  for svc in prometheus redis-server; do
    if command -v service >/dev/null 2>&1; then
      service "$svc" stop >/dev/null 2>&1 || true
    fi
    pkill -x "$svc" >/dev/null 2>&1 || true
  done
  exit "$kustomize_missing"
fi

if [[ "$purpose" == dev ]]; then
  echo "note: ${missing[*]} not installed (needs root): \`make dev\` falls back to the" \
    "embedded Tansu broker, which some Kafka clients (librdkafka: kcat, confluent-kafka)" \
    "cannot read. Install them for the real Apache Kafka." >&2
  exit 0
fi

{
  echo "missing system packages for \`make $purpose\`: ${missing[*]}"
  echo "install them (Debian/Ubuntu): sudo apt-get install ${missing[*]}"
  echo "or run this command as root, which installs them itself."
} >&2
exit 1
