{{/*
The portcullis sidecar container: the one definition. The injector receives it rendered (in
settings.json, see injector-settings.yaml) and adds only what depends on the pod: the data port
it takes over from the app (`--port`, and that port's name in `ports`) and the app's new port
(`--upstream http://127.0.0.1:<app port>`). Everything else is here, so the chart and the
injected pods cannot diverge.

- Runs as a non-root user with a read-only root filesystem, no privilege escalation, no
  capabilities and the runtime's default seccomp profile; it writes nothing to disk.
- Probes use the admin port: /readyz turns 503 as soon as a drain starts, /healthz is liveness.
- The config directory is a volume mounted as a directory (never subPath: a subPath mount is
  never updated, and live reload follows the kubelet's ..data symlink swap).
- OTEL_RESOURCE_ATTRIBUTES names the pod, its namespace and node, from the downward API (the pod
  name is unknown when the webhook runs: a Deployment's pods only have generateName then).
*/}}
{{- define "portcullis.sidecar" -}}
{{- $native := eq (include "portcullis.nativeSidecar" .) "true" -}}
{{- $s := .Values.sidecar -}}
name: portcullis
image: {{ include "portcullis.sidecarImage" . | quote }}
imagePullPolicy: {{ default .Values.image.pullPolicy $s.image.pullPolicy }}
{{- if $native }}
# A native sidecar: started before the app, stopped after it, not counted for Job completion.
restartPolicy: Always
{{- end }}
command: ["node", "/app/dist/main.js"]
args:
  - run
  - --config
  - /etc/portcullis/portcullis.yaml
  - --admin-port
  - {{ $s.adminPort | int | quote }}
env:
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
    value: "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)"
  {{- if $s.otlpEndpoint }}
  - name: OTEL_EXPORTER_OTLP_ENDPOINT
    value: {{ $s.otlpEndpoint | quote }}
  {{- else }}
  # No collector configured: no span export (metrics stay on the admin port's /metrics).
  - name: OTEL_TRACES_EXPORTER
    value: none
  {{- end }}
  {{- with $s.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  - name: pc-admin
    containerPort: {{ $s.adminPort | int }}
    protocol: TCP
readinessProbe:
  httpGet:
    path: /readyz
    port: pc-admin
  periodSeconds: {{ $s.probes.readinessPeriodSeconds | int }}
  timeoutSeconds: 1
  failureThreshold: 1
livenessProbe:
  httpGet:
    path: /healthz
    port: pc-admin
  periodSeconds: {{ $s.probes.livenessPeriodSeconds | int }}
  timeoutSeconds: 2
  failureThreshold: 3
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $s.runAsUser | int64 }}
  runAsGroup: {{ $s.runAsUser | int64 }}
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
resources:
  {{- toYaml $s.resources | nindent 2 }}
volumeMounts:
  - name: {{ include "portcullis.configVolume" . }}
    mountPath: /etc/portcullis
    readOnly: true
terminationMessagePolicy: FallbackToLogsOnError
{{- end }}
