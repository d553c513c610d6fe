{{/*
The chart name, or nameOverride.
*/}}
{{- define "augment-connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the resources: fullnameOverride, else release-name, with the chart name left
out when the release name already contains it. Truncated at 63 characters (DNS label).
*/}}
{{- define "augment-connector.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "augment-connector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of every resource.
*/}}
{{- define "augment-connector.labels" -}}
helm.sh/chart: {{ include "augment-connector.chart" . }}
{{ include "augment-connector.selectorLabels" . }}
app.kubernetes.io/version: {{ include "augment-connector.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: augment-connector
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels: stable for the life of a release, so no chart or app version in them (a
Deployment's selector cannot change).
*/}}
{{- define "augment-connector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "augment-connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "augment-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "augment-connector.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "augment-connector.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- end -}}

{{/*
The image reference: repository:tag, or repository@digest when a digest pins it.
*/}}
{{- define "augment-connector.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "augment-connector.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
Name of the ConfigMap holding config.yaml: existingConfigMap, else the chart's own.
*/}}
{{- define "augment-connector.configMapName" -}}
{{- if .Values.existingConfigMap -}}
{{- .Values.existingConfigMap -}}
{{- else -}}
{{- include "augment-connector.fullname" . -}}
{{- end -}}
{{- end -}}

{{/*
The metrics address the chart gives the connector (--metrics-listen, which overrides
metrics.listen): every interface, on service.port, where the probes and the Service look.
*/}}
{{- define "augment-connector.metricsListen" -}}
{{- printf ":%d" (int .Values.service.port) -}}
{{- end -}}

{{/*
The config as rendered into the ConfigMap: .Values.config as written (the metrics address is
given by --metrics-listen, see the Deployment). Validates first.
*/}}
{{- define "augment-connector.config" -}}
{{- include "augment-connector.validate" . -}}
{{- toYaml .Values.config -}}
{{- end -}}

{{/*
durationSeconds: a Go duration (what the connector's config takes: 500ms, 30s, 1m, 1h30m, 0)
as a number of seconds, printed as a float. Fails on anything else, ${VAR} references
included (the chart cannot know their value). Call with (list "key.path" value).
*/}}
{{- define "augment-connector.durationSeconds" -}}
{{- $path := index . 0 -}}
{{- $s := index . 1 | toString | trim -}}
{{- if eq $s "0" -}}
0
{{- else -}}
{{- if not (regexMatch "^([0-9]*\\.?[0-9]+(ns|us|µs|ms|s|m|h))+$" $s) -}}
{{- fail (printf "%s: %q is not a literal duration such as 30s, 1m or 1h30m (needed to check terminationGracePeriodSeconds against it)" $path $s) -}}
{{- end -}}
{{- $unit := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]*\\.?[0-9]+(ns|us|µs|ms|s|m|h)" $s -1 -}}
{{- $n := regexFind "^[0-9]*\\.?[0-9]+" . -}}
{{- $u := trimPrefix $n . -}}
{{- $total = addf $total (mulf (float64 $n) (get $unit $u)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/*
shutdownTimeout: the connector's connector.shutdownTimeout (default 30s) as the chart sees
it: from config, or existingConfigMapShutdownTimeout with an existing ConfigMap.
*/}}
{{- define "augment-connector.shutdownTimeoutSeconds" -}}
{{- if .Values.existingConfigMap -}}
{{- include "augment-connector.durationSeconds" (list "existingConfigMapShutdownTimeout" .Values.existingConfigMapShutdownTimeout) -}}
{{- else -}}
{{- $connector := dict -}}
{{- if hasKey .Values.config "connector" -}}
{{- $connector = get .Values.config "connector" | default dict -}}
{{- end -}}
{{- $st := get $connector "shutdownTimeout" | default "30s" -}}
{{- include "augment-connector.durationSeconds" (list "config.connector.shutdownTimeout" $st) -}}
{{- end -}}
{{- end -}}

{{/*
secretRef: whether a config value is a bare ${NAME} reference (the only form the chart lets
a secret take inside the ConfigMap).
*/}}
{{- define "augment-connector.isEnvRef" -}}
{{- if regexMatch "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$" (toString .) -}}true{{- end -}}
{{- end -}}

{{/*
validate: everything the chart can refuse before Kubernetes sees it. Output is empty.
*/}}
{{- define "augment-connector.validate" -}}
{{- $cfg := .Values.config | default dict -}}
{{- if .Values.existingConfigMap -}}
  {{- if $cfg -}}
    {{- fail "set either config or existingConfigMap, not both" -}}
  {{- end -}}
{{- else -}}
  {{- $kafka := get $cfg "kafka" | default dict -}}
  {{- if not (get $kafka "brokers") -}}
    {{- fail "config.kafka.brokers is required (or set existingConfigMap)" -}}
  {{- end -}}
  {{- if not (get $cfg "tenants") -}}
    {{- fail "config.tenants is required (or set existingConfigMap)" -}}
  {{- end -}}
  {{- if not (get $cfg "pipelines") -}}
    {{- fail "config.pipelines is required (or set existingConfigMap)" -}}
  {{- end -}}
  {{- $metrics := get $cfg "metrics" | default dict -}}
  {{- $listen := get $metrics "listen" | default "" -}}
  {{- if and $listen (ne $listen (include "augment-connector.metricsListen" .)) -}}
    {{- fail (printf "config.metrics.listen is %q but the chart serves metrics and health on service.port (--metrics-listen): leave it out or set it to %q" $listen (include "augment-connector.metricsListen" .)) -}}
  {{- end -}}
  {{- /* Secrets in clear would be stored in the ConfigMap: only ${NAME} or a file. */ -}}
  {{- range $name, $tenant := (get $cfg "tenants" | default dict) -}}
    {{- $token := get ($tenant | default dict) "token" | default "" -}}
    {{- if and $token (not (include "augment-connector.isEnvRef" $token)) -}}
      {{- fail (printf "config.tenants.%s.token must be ${ENV_NAME} (see secretEnv) or left out for tokenFile (see secretFiles): a token written in clear would be stored in a ConfigMap" $name) -}}
    {{- end -}}
  {{- end -}}
  {{- $sasl := get $kafka "sasl" | default dict -}}
  {{- $registry := get $cfg "schemaRegistry" | default dict -}}
  {{- $basic := get $registry "basicAuth" | default dict -}}
  {{- $kafkaOAuth := get $sasl "oauth" | default dict -}}
  {{- $registryOAuth := get $registry "oauth" | default dict -}}
  {{- $secrets := dict "config.kafka.sasl.password" (get $sasl "password") "config.schemaRegistry.basicAuth.password" (get $basic "password") "config.schemaRegistry.bearerToken" (get $registry "bearerToken") "config.kafka.sasl.token" (get $sasl "token") "config.kafka.sasl.oauth.clientSecret" (get $kafkaOAuth "clientSecret") "config.schemaRegistry.oauth.clientSecret" (get $registryOAuth "clientSecret") -}}
  {{- range $path, $v := $secrets -}}
    {{- if and $v (not (include "augment-connector.isEnvRef" $v)) -}}
      {{- fail (printf "%s must be ${ENV_NAME} (see secretEnv) or left out for the matching *File key (see secretFiles): a secret written in clear would be stored in a ConfigMap" $path) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- if and (or .Values.secretEnv .Values.secretFiles.enabled) (not .Values.existingSecret) -}}
  {{- fail "secretEnv and secretFiles need existingSecret: the name of a Secret created outside the chart" -}}
{{- end -}}
{{- $grace := .Values.terminationGracePeriodSeconds | float64 -}}
{{- $shutdown := include "augment-connector.shutdownTimeoutSeconds" . | float64 -}}
{{- if le $grace $shutdown -}}
  {{- fail (printf "terminationGracePeriodSeconds (%v) must exceed the connector's shutdownTimeout (%vs), or the pod is killed before it commits its offsets; leave it 15s or so above" .Values.terminationGracePeriodSeconds $shutdown) -}}
{{- end -}}
{{- end -}}
