#!/usr/bin/env bash
# Prints the static manifest deploy/manifests/bollard.yaml: the chart rendered with its default values into the
# namespace metallb-system, CRDs included, after a Namespace that allows the speaker's host network and NET_RAW.
# The one non-default: the membership Secret is left out, because a key rendered here would be committed and
# shared by every cluster installed from this file; users create their own (see the header).
# Regenerate: bash deploy/manifests/render.sh > deploy/manifests/bollard.yaml
# Extra arguments go to `helm template` (the release pins image digests with --set image.digest=…).
set -euo pipefail
cd "$(dirname "$0")/../.."
helm="$(bash test/harness/install-helm.sh --print-path)"
[ -x "$helm" ] || { echo "render: no helm at $helm; run bash test/harness/install-helm.sh" >&2; exit 1; }

cat <<'YAML'
# Bollard, rendered from deploy/helm/bollard with default values (bash deploy/manifests/render.sh); do not edit.
#
#   kubectl apply --server-side -f bollard.yaml
#   kubectl create secret generic bollard-membership -n metallb-system \
#     --from-literal=secretkey="$(openssl rand -base64 48)"
#
# The speakers authenticate each other with that Secret; create it before or right after applying.
---
apiVersion: v1
kind: Namespace
metadata:
  name: metallb-system
  labels:
    app.kubernetes.io/name: bollard
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/audit: privileged
    pod-security.kubernetes.io/warn: privileged
YAML
"$helm" template bollard deploy/helm/bollard --namespace metallb-system --include-crds \
  --set speaker.membershipSecret.create=false "$@"
