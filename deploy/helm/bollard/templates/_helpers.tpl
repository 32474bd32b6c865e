{{/* Release-wide name prefix: the release name, or release-chart when the release name lacks the chart name. */}}
{{- define "bollard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bollard.controller.name" -}}{{ include "bollard.fullname" . }}-controller{{- end -}}
{{- define "bollard.speaker.name" -}}{{ include "bollard.fullname" . }}-speaker{{- end -}}
{{- define "bollard.ingress.name" -}}{{ include "bollard.fullname" . }}-ingress{{- end -}}

{{/* The controller's Lease: one per load-balancer class, named as `bollard controller` names it. */}}
{{- define "bollard.controller.leaseName" -}}
{{- if .Values.loadBalancerClass -}}
bollard-controller-{{ .Values.loadBalancerClass | sha256sum | trunc 12 }}
{{- else -}}
bollard-controller
{{- end -}}
{{- end -}}

{{- define "bollard.configNamespace" -}}{{ .Values.configNamespace | default .Release.Namespace }}{{- end -}}

{{- define "bollard.membershipSecretName" -}}
{{- .Values.speaker.membershipSecret.name | default (printf "%s-membership" (include "bollard.fullname" .)) -}}
{{- end -}}

{{- define "bollard.selectorLabels" -}}
app.kubernetes.io/name: bollard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bollard.labels" -}}
{{ include "bollard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels of one component: include with (dict "root" $ "component" "controller"). */}}
{{- define "bollard.componentLabels" -}}
{{ include "bollard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bollard.componentSelector" -}}
{{ include "bollard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* repository:tag, and @digest when one is set (the tag then only documents what the digest is). */}}
{{- define "bollard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "bollard.speaker.image" -}}
{{- printf "%s:%s" .Values.speaker.image.repository (.Values.speaker.image.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- with .Values.speaker.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/* Pod identity from the downward API, used for leader election identities, Events and the Lease namespace. */}}
{{- define "bollard.podEnv" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
{{- end -}}

{{/* Memory settings of the controller and the speaker, measured with bench/memory.ts (1,000 Services, 100 Nodes;
packages/speaker/README.md "Memory"): these mostly idle processes allocate steadily, so V8 never sees them idle and
keeps a young generation of 2 x 32 MiB and an old space of twice the live heap. --max-semi-space-size=1 caps the
first; --memory-saver-mode has V8 collect and compact for memory whatever the allocation rate, and grow the old space
conservatively (V8 heap ~60 -> ~22 MiB); --single-threaded leaves V8's worker threads idle, so no malloc arenas of
theirs; --no-opt --no-maglev --no-sparkplug (the interpreter only) keep the compilers' code (pages of the node
binary), output and zones out of memory, for more CPU where JavaScript is hot (the leader's burst of 1,000
allocations: 9.5 -> 12.5 CPU s). Speaker 146 -> 81 MiB, the leader 147 -> 77 MiB, not the leader 85 -> 70 MiB. Not
the ingress: its proxy allocates fast and wants the large young generation and the optimizing compilers.
The flags are on node's command line, not in NODE_OPTIONS: the speaker image's node has a file capability, so it runs
in secure-execution mode, where Node ignores NODE_OPTIONS (and glibc MALLOC_ARENA_MAX, which still reaches the
controller). V8 keys the compile cache by the flags that change code (all but --max-semi-space-size here), so the
images' cache is filled with these flags too (deploy/container/Containerfile: the same list, which
test/packaging/chart.test.ts holds together). */}}
{{- define "bollard.lowMemoryCommand" -}}
- /usr/local/bin/node
- --max-semi-space-size=1
- --memory-saver-mode
- --single-threaded
- --no-opt
- --no-maglev
- --no-sparkplug
- /app/packages/cli/bin/bollard.js
{{- end -}}
{{- define "bollard.lowMemoryEnv" -}}
- name: MALLOC_ARENA_MAX
  value: "2"
{{- end -}}

{{/* Security context of the non-root components (controller, ingress): no capability at all. */}}
{{- define "bollard.restrictedSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "bollard.podScheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
