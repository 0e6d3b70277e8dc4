{{/* The chart's name, or nameOverride. */}}
{{- define "workunits.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: fullnameOverride, or release-chart (once when they match). */}}
{{- define "workunits.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "workunits.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "workunits.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "workunits.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workunits.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "workunits.labels" -}}
{{ include "workunits.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* "true" when every watched namespace is a plain name: namespaced RBAC only. */}}
{{- define "workunits.namespaced" -}}
{{- $exact := gt (len .Values.watchNamespaces) 0 -}}
{{- range .Values.watchNamespaces -}}
{{- if regexMatch "[*?!,\\[\\]]" . -}}{{- $exact = false -}}{{- end -}}
{{- end -}}
{{- ternary "true" "" $exact -}}
{{- end -}}

{{- define "workunits.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs in each namespace it watches. */}}
{{- define "workunits.rules" -}}
# The resources: read and watch them, create a WorkJob's units, delete finished
# ones (ttlSecondsAfterFinished), write status through its subresource.
- apiGroups: [workunits.io]
  resources: [workunits, workjobs]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [workunits.io]
  resources: [workunits/status, workjobs/status]
  verbs: [get, update, patch]
# One Job per attempt; deleted when an attempt is stopped (timeout, cancel).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# Pods are only read: waiting reasons, exit codes, termination messages.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Results too large for status.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, update, patch, delete]
# Events on units and WorkJobs (the operator's own, and kopf's).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}


{{/* The rules leader election needs, in the release namespace only. */}}
{{- define "workunits.leaseRules" -}}
# The Lease replicas take turns on: read it, create it once, renew or take it over.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end -}}
