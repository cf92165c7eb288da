{{/* The chart's name, at most 63 characters. */}}
{{- define "evidence.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's resources' name: the release name, with the chart's
name added unless the release name holds it. */}}
{{- define "evidence.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "evidence.selectorLabels" -}}
app.kubernetes.io/name: {{ include "evidence.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: evidenced
{{- end -}}

{{- define "evidence.labels" -}}
{{ include "evidence.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "evidence.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* evidenced's NATS URL: every node of the NATS chart's cluster, as user
evidenced with the password from the environment (Kubernetes expands
$(EVIDENCE_NATS_PASSWORD) from the variable set before it), or natsURL. */}}
{{- define "evidence.natsURL" -}}
{{- if .Values.natsURL -}}
{{ .Values.natsURL }}
{{- else if .Values.nats.enabled -}}
{{- $name := .Values.nats.fullnameOverride | required "nats.fullnameOverride is required: evidenced's NATS URL names the NATS chart's pods by it" -}}
{{- $port := int (.Values.nats.config.nats.port | default 4222) -}}
{{- $nodes := int (.Values.nats.config.cluster.replicas | default 1) -}}
{{- $urls := list -}}
{{- range $i := until $nodes -}}
{{- $urls = append $urls (printf "nats://evidenced:$(EVIDENCE_NATS_PASSWORD)@%s-%d.%s-headless.%s.svc:%d" $name $i $name $.Release.Namespace $port) -}}
{{- end -}}
{{ join "," $urls }}
{{- else -}}
{{- fail "nats.enabled is false and natsURL is empty: give natsURL, the NATS evidenced connects to" -}}
{{- end -}}
{{- end -}}

{{/* evidenced's ClickHouse URL, the password from the environment. */}}
{{- define "evidence.clickhouseURL" -}}
{{- $c := .Values.clickhouse -}}
{{- $host := $c.host | required "clickhouse.host is required: the ClickHouse evidenced writes to" -}}
{{- printf "%s://%s:$(EVIDENCE_CLICKHOUSE_PASSWORD)@%s:%d/%s" (ternary "clickhouses" "clickhouse" (eq $c.secure true)) ($c.user | required "clickhouse.user is required") $host (int $c.port) ($c.database | required "clickhouse.database is required") -}}
{{- end -}}
