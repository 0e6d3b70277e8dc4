#!/usr/bin/env bash
# The main job: the operator on your cluster, with the examples.
#
# Uses the cluster your kubeconfig names; when none answers, brings up the local
# control plane (hack/cluster.sh). Installs the CRDs, starts the operator, applies
# examples/ into the namespace workunits-examples and shows `kubectl get work` until
# every example has finished. The operator then keeps running until Ctrl-C.
#
# Environment: WORKUNITS_LOCAL=1 always uses the local control plane;
# WORKUNITS_RUN_EXIT=1 stops the operator once the examples finished (exit 1 if one
# failed); EXAMPLES_NAMESPACE (default workunits-examples); WORKUNITS_HEALTH_PORT, the
# port of the operator's probes on 127.0.0.1 (default 18080).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBECTL=${KUBECTL:-kubectl}
ns=${EXAMPLES_NAMESPACE:-workunits-examples}
port=${WORKUNITS_HEALTH_PORT:-18080}
say() { printf '\n== %s\n' "$*"; }

if [[ "${WORKUNITS_LOCAL:-}" != 1 ]] && timeout 10 "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
  say "using the cluster of your kubeconfig: $("$KUBECTL" config current-context 2>/dev/null || echo in-cluster)"
else
  say "no cluster answers: bringing up the local control plane"
  hack/cluster.sh up >/dev/null
  export KUBECONFIG
  KUBECONFIG=$(hack/cluster.sh kubeconfig)
  echo "KUBECONFIG=$KUBECONFIG"
fi

say "installing the CRDs"
"$KUBECTL" apply -f crds/
"$KUBECTL" wait --for=condition=Established crd/workunits.workunits.io crd/workjobs.workunits.io --timeout=60s

mkdir -p .run
log=.run/operator.log
say "starting the operator (log: $log)"
.venv/bin/workunits run --all-namespaces --health-port "$port" >"$log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true; wait $operator 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $operator 2>/dev/null || { tail -20 "$log"; echo "the operator exited"; exit 1; }
  sleep 0.3
done

say "applying examples/ into namespace $ns"
"$KUBECTL" create namespace "$ns" --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" apply -n "$ns" -f examples/

finished() {
  local phases
  phases=$("$KUBECTL" get work -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  [[ -n "$phases" ]] && ! grep -qvE '^(Succeeded|Failed|Cancelled)$' <<<"$phases"
}
deadline=$((SECONDS + ${RUN_TIMEOUT:-600}))
until finished; do
  ((SECONDS < deadline)) || { echo "examples still running after ${RUN_TIMEOUT:-600}s"; break; }
  [[ -t 1 ]] && clear
  echo "kubectl get work -n $ns   (refreshing every 2s)"
  "$KUBECTL" get work -n "$ns" 2>/dev/null || true
  sleep 2
done
say "done"
"$KUBECTL" get work -n "$ns"
failed=$("$KUBECTL" get work -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -cvE '^Succeeded$' || true)

if [[ "${WORKUNITS_RUN_EXIT:-}" == 1 ]]; then
  ((failed == 0))
  exit $?
fi
say "the operator keeps running (pid $operator); Ctrl-C stops it"
wait $operator
