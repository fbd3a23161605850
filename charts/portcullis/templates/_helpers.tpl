{{/*
Names and labels. Kubernetes names and label values stop at 63 characters.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else release-chart (just the release
name when it already contains the chart name).
*/}}
{{- define "portcullis.fullname" -}}
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

{{/* A name derived from the full name with a suffix, still within 63 characters. */}}
{{- define "portcullis.suffixed" -}}
{{- $full := include "portcullis.fullname" .root }}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix))) | trimSuffix "-") .suffix }}
{{- end }}

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: never change them after install (a Deployment's selector is immutable). */}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" | quote }}
{{- end }}

{{/* Labels on every object: the selector labels plus chart, version and manager. */}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: portcullis
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The injector's image: image.repository:image.tag, the tag defaulting to appVersion. */}}
{{- define "portcullis.image" -}}
{{- printf "%s:%s" (required "image.repository is required" .Values.image.repository) (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The sidecar's image: sidecar.image.*, each part defaulting to image.*. */}}
{{- define "portcullis.sidecarImage" -}}
{{- $repo := default .Values.image.repository .Values.sidecar.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag }}
{{- printf "%s:%s" (required "sidecar.image.repository or image.repository is required" $repo) $tag }}
{{- end }}

{{/*
"true" when the sidecar is a native sidecar (an init container with restartPolicy Always):
sidecar.nativeSidecar true/false, or auto: the cluster is Kubernetes 1.29 or newer, where the
SidecarContainers feature is on by default.
*/}}
{{- define "portcullis.nativeSidecar" -}}
{{- $v := .Values.sidecar.nativeSidecar | toString }}
{{- if eq $v "auto" }}
{{- semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version | toString }}
{{- else }}
{{- eq $v "true" | toString }}
{{- end }}
{{- end }}

{{/* The pod volume the sidecar's config directory comes from (a ConfigMap, or the downward API). */}}
{{- define "portcullis.configVolume" -}}
portcullis-config
{{- end }}

{{- define "portcullis.tlsSecretName" -}}
{{- include "portcullis.suffixed" (dict "root" . "suffix" "tls") }}
{{- end }}

{{/* DNS names the webhook's serving certificate must carry: the Service, as the API server calls it. */}}
{{- define "portcullis.dnsNames" -}}
{{- $svc := include "portcullis.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
The injector's settings (settings.json): the sidecar rendered by the one sidecar partial, and
what the injector needs to place it. The injector adds the per-pod parts (data port, upstream).
*/}}
{{- define "portcullis.injectorSettings" -}}
{{- $sidecar := include "portcullis.sidecar" . | fromYaml }}
{{- if hasKey $sidecar "Error" }}{{ fail (printf "the sidecar partial did not render as YAML: %s" $sidecar.Error) }}{{ end }}
{{- $settings := dict
  "sidecar" $sidecar
  "nativeSidecar" (eq (include "portcullis.nativeSidecar" .) "true")
  "adminPort" (int .Values.sidecar.adminPort)
  "appPort" (int .Values.sidecar.appPort)
  "appPortEnv" .Values.sidecar.appPortEnv
  "configVolume" (include "portcullis.configVolume" .)
  "config" .Values.defaults
  "graceMarginSeconds" (int .Values.sidecar.graceMarginSeconds)
}}
{{- toPrettyJson $settings }}
{{- end }}
