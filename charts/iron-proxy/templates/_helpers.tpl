{{/* Chart name, release-qualified name, labels: the same helpers (and names) as the Go chart. */}}
{{- define "iron-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iron-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "iron-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iron-proxy.labels" -}}
helm.sh/chart: {{ include "iron-proxy.chart" . }}
{{ include "iron-proxy.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "iron-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iron-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "iron-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iron-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "iron-proxy.secretEnvName" -}}
{{- printf "%s-env" (include "iron-proxy.fullname" .) }}
{{- end }}

{{- define "iron-proxy.caSecretName" -}}
{{- printf "%s-ca" (include "iron-proxy.fullname" .) }}
{{- end }}

{{/*
Listen addresses from .Values.listeners, as IRON_*_LISTEN variables (they override the config
file), so the Service, the container ports and the proxy's binds never disagree. management has
no such variable in the Go chart: it is merged into the config (configmap.yaml).
*/}}
{{- define "iron-proxy.listenerEnv" -}}
{{- $l := .Values.listeners -}}
{{- if $l.dns.enabled }}
- name: IRON_DNS_LISTEN
  value: {{ printf ":%v" (int $l.dns.port) | quote }}
{{- else }}
- name: IRON_DNS_ENABLED
  value: "false"
{{- end }}
{{- if $l.http.enabled }}
- name: IRON_PROXY_HTTP_LISTEN
  value: {{ printf ":%v" (int $l.http.port) | quote }}
{{- end }}
{{- if $l.https.enabled }}
- name: IRON_PROXY_HTTPS_LISTEN
  value: {{ printf ":%v" (int $l.https.port) | quote }}
{{- end }}
{{- if $l.tunnel.enabled }}
- name: IRON_PROXY_TUNNEL_LISTEN
  value: {{ printf ":%v" (int $l.tunnel.port) | quote }}
{{- end }}
{{- if $l.metrics.enabled }}
- name: IRON_METRICS_LISTEN
  value: {{ printf ":%v" (int $l.metrics.port) | quote }}
{{- end }}
{{- end }}

{{/*
Audit records to an OTLP collector (logs signal), the standard OTEL_* variables the proxy reads.
The pod's name, namespace and node go into the resource attributes, so every record says which
replica wrote it.
*/}}
{{- define "iron-proxy.otelEnv" -}}
{{- with .Values.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
{{- with .protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .serviceName | default "iron-proxy" | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)%s" (ternary (printf ",%s" .resourceAttributes) "" (ne (.resourceAttributes | default "") "")) | quote }}
{{- with .headersSecret }}
{{- if .name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key | default "headers" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Seconds the pod needs to stop gracefully: the preStop pause (endpoints are removed while the proxy
still serves), then the proxy's own drain (proxy.shutdown_timeout), then a margin for the last
audit records. terminationGracePeriodSeconds must cover it; deployment.yaml fails otherwise.
*/}}
{{- define "iron-proxy.minGracePeriod" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.shutdownTimeoutSeconds) 2 }}
{{- end }}
