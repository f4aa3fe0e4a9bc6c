{{/* Names ------------------------------------------------------------------------- */}}

{{- define "loopscope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-<chart>`, or the release name alone when it already contains the chart name.
Room is left for the longest suffix (`-worker-threadpool`). */}}
{{- define "loopscope.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "loopscope.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: (dict "ctx" $ "component" "gateway") --------------------------------------- */}}

{{- define "loopscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loopscope.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "loopscope.labels" -}}
{{ include "loopscope.selectorLabels" . }}
app.kubernetes.io/part-of: loopscope
app.kubernetes.io/version: {{ include "loopscope.imageTag" .ctx | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ include "loopscope.chart" .ctx }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of resources that belong to no one workload (Secrets, the ServiceAccount, ...). */}}
{{- define "loopscope.commonLabels" -}}
app.kubernetes.io/name: {{ include "loopscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: loopscope
app.kubernetes.io/version: {{ include "loopscope.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "loopscope.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Images ------------------------------------------------------------------------ */}}

{{- define "loopscope.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* repository:tag, or repository:tag@digest: (dict "image" .Values.x.image "tag" "...") */}}
{{- define "loopscope.imageRef" -}}
{{- $ref := printf "%s:%s" .image.repository (toString .tag) -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "loopscope.image" -}}
{{- include "loopscope.imageRef" (dict "image" .Values.image "tag" (include "loopscope.imageTag" .)) -}}
{{- end -}}

{{/* Service accounts ---------------------------------------------------------------- */}}

{{- define "loopscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "loopscope.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The loopscope services -------------------------------------------------------------
key: the values key; component: the name in resources and labels; args: the command. */}}
{{- define "loopscope.componentTable" -}}
- {key: gateway, component: gateway, args: [gateway]}
- {key: workerAsync, component: worker-async, args: [worker]}
- {key: workerThreadpool, component: worker-threadpool, args: [worker]}
- {key: backend, component: backend, args: [backend]}
- {key: loadgen, component: loadgen, args: [loadgen, serve]}
{{- end -}}

{{/* The enabled services, as a YAML list (use with fromYamlArray). */}}
{{- define "loopscope.components" -}}
{{- $out := list -}}
{{- range (include "loopscope.componentTable" . | fromYamlArray) -}}
{{- if or (ne .key "loadgen") $.Values.loadgen.enabled -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Where a service's /metrics is: the admin port unless the exposition is `mounted`.
(dict "ctx" $ "values" .Values.gateway) -> "admin" or "http" */}}
{{- define "loopscope.metricsPortName" -}}
{{- if eq .values.metricsExposition "mounted" -}}http{{- else -}}admin{{- end -}}
{{- end -}}

{{- define "loopscope.metricsPort" -}}
{{- if eq .values.metricsExposition "mounted" -}}
{{- .ctx.Values.ports.http -}}
{{- else -}}
{{- .ctx.Values.ports.admin -}}
{{- end -}}
{{- end -}}

{{- define "loopscope.serviceUrl" -}}
{{- printf "http://%s-%s:%d" (include "loopscope.fullname" .ctx) .component (int .ctx.Values.ports.http) -}}
{{- end -}}

{{/* Sentry ------------------------------------------------------------------------- */}}

{{- define "loopscope.sentryEnabled" -}}
{{- if and .Values.sentry.dsn .Values.sentry.existingSecret -}}
{{- fail "sentry: set dsn or existingSecret, not both" -}}
{{- end -}}
{{- if or .Values.sentry.dsn .Values.sentry.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "loopscope.sentrySecretName" -}}
{{- default (printf "%s-sentry" (include "loopscope.fullname" .)) .Values.sentry.existingSecret -}}
{{- end -}}

{{- define "loopscope.sentrySecretKey" -}}
{{- if .Values.sentry.existingSecret -}}{{ .Values.sentry.existingSecretKey }}{{- else -}}dsn{{- end -}}
{{- end -}}

{{/* Prometheus and Grafana ------------------------------------------------------------ */}}

{{- define "loopscope.prometheusName" -}}
{{- printf "%s-prometheus" (include "loopscope.fullname" .) -}}
{{- end -}}

{{- define "loopscope.grafanaName" -}}
{{- printf "%s-grafana" (include "loopscope.fullname" .) -}}
{{- end -}}

{{- define "loopscope.grafanaSecretName" -}}
{{- default (printf "%s-admin" (include "loopscope.grafanaName" .)) .Values.grafana.admin.existingSecret -}}
{{- end -}}

{{/* The rules file. A checkout without symlinks (git config core.symlinks false, some
Windows clones) leaves rules/ and dashboards/ as text files: fail then, rather than
ship empty ConfigMaps. */}}
{{- define "loopscope.rules" -}}
{{- include "loopscope.requiredFile" (dict "ctx" . "path" "rules/loopscope.rules.yml") -}}
{{- end -}}

{{- define "loopscope.symlinkHint" -}}
helm/loopscope/{{ . }} must link to the repository's files (a checkout without symlinks leaves a text file there: clone with `git -c core.symlinks=true`, or package the chart from a checkout that has them)
{{- end -}}

{{/* A file of the chart that must exist and not be empty. (dict "ctx" $ "path" "...") */}}
{{- define "loopscope.requiredFile" -}}
{{- $text := .ctx.Files.Get .path -}}
{{- if not (trim $text) -}}
{{- fail (printf "%s is missing or empty: %s" .path (include "loopscope.symlinkHint" (first (splitList "/" .path)))) -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/* The dashboards, as .Files.Glob "dashboards/*.json"; fails when there is none. */}}
{{- define "loopscope.requireDashboards" -}}
{{- if not (.Files.Glob "dashboards/*.json") -}}
{{- fail (printf "no dashboards/*.json: %s" (include "loopscope.symlinkHint" "dashboards")) -}}
{{- end -}}
{{- end -}}

{{/* The URL of the Prometheus Grafana reads. */}}
{{- define "loopscope.grafanaPrometheusUrl" -}}
{{- if .Values.grafana.prometheusUrl -}}
{{- .Values.grafana.prometheusUrl -}}
{{- else if .Values.prometheus.enabled -}}
{{- printf "http://%s:%d" (include "loopscope.prometheusName" .) (int .Values.prometheus.service.port) -}}
{{- else -}}
{{- fail "grafana.enabled with prometheus.enabled=false needs grafana.prometheusUrl" -}}
{{- end -}}
{{- end -}}

{{/* Where Grafana's admin credentials come from: "existing", "values" or "generated". */}}
{{- define "loopscope.grafanaAdminSource" -}}
{{- if .Values.grafana.admin.existingSecret -}}existing{{- else if .Values.grafana.admin.password -}}values{{- else -}}generated{{- end -}}
{{- end -}}

{{/* The container port numbers of /metrics across the enabled services. */}}
{{- define "loopscope.metricsPorts" -}}
{{- $ports := dict -}}
{{- range (include "loopscope.components" . | fromYamlArray) -}}
{{- $values := index $.Values .key -}}
{{- $_ := set $ports (include "loopscope.metricsPort" (dict "ctx" $ "values" $values)) true -}}
{{- end -}}
{{- keys $ports | sortAlpha | toYaml -}}
{{- end -}}

{{/* An int setting as an env value: ints pass through Helm as float64 and would print
1e+06. */}}
{{- define "loopscope.int" -}}
{{- int64 . | toString | quote -}}
{{- end -}}

{{/* NetworkPolicy pieces ---------------------------------------------------------------- */}}

{{/* Peers: the pods of this release with one of the given components.
(dict "ctx" $ "components" (list "gateway")) */}}
{{- define "loopscope.peers" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ include "loopscope.name" .ctx }}
      app.kubernetes.io/instance: {{ .ctx.Release.Name }}
    matchExpressions:
      - key: app.kubernetes.io/component
        operator: In
        values:
          {{- toYaml .components | nindent 10 }}
{{- end -}}

{{/* DNS: UDP and TCP on each of networkPolicy.dns.ports, to networkPolicy.dns.to (none
listed: any destination, e.g. for NodeLocal DNSCache on a node address). */}}
{{- define "loopscope.dnsEgress" -}}
{{- $dns := .Values.networkPolicy.dns -}}
- ports:
    {{- range $dns.ports }}
    - port: {{ int . }}
      protocol: UDP
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
  {{- with $dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* networkPolicy.extraIngress / extraEgress of one component, as rule list items:
(dict "ctx" $ "component" "gateway" "direction" "Ingress") */}}
{{- define "loopscope.extraRules" -}}
{{- $rules := index .ctx.Values.networkPolicy (printf "extra%s" .direction) -}}
{{- with (index $rules .component) }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* A securityContext from values, without the fixed ids when `openshift` is on (the
restricted-v2 SCC assigns them from the namespace's range). (dict "ctx" $ "sc" ...) */}}
{{- define "loopscope.securityContext" -}}
{{- $sc := deepCopy .sc -}}
{{- if .ctx.Values.openshift -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* Annotations and labels that keep a mesh's sidecar out of a pod that must end (the
helm test pods): a sidecar would keep the pod running after the test, and add a second
container to it. */}}
{{- define "loopscope.noSidecarAnnotations" -}}
sidecar.istio.io/inject: "false"
linkerd.io/inject: disabled
kuma.io/sidecar-injection: disabled
{{- end -}}
{{- define "loopscope.noSidecarLabels" -}}
sidecar.istio.io/inject: "false"
{{- end -}}

{{/* Seconds a service drains in-flight requests on SIGTERM: common.shutdownGraceSecs, or
its upstream timeout when that is longer (a request waiting on its upstream must not be
cut). (dict "ctx" $ "values" .Values.gateway) */}}
{{- define "loopscope.drainSecs" -}}
{{- $drain := int .ctx.Values.common.shutdownGraceSecs -}}
{{- with .values.upstreamTimeoutMs -}}
{{- $drain = max $drain (div (add (int .) 999) 1000) -}}
{{- end -}}
{{- with .values.requestTimeout -}}
{{- /* loadgen's request timeout, a duration like 10s, 1500ms or 1m */ -}}
{{- $d := . | toString -}}
{{- $secs := 0 -}}
{{- if hasSuffix "ms" $d -}}{{- $secs = div (add (int (trimSuffix "ms" $d)) 999) 1000 -}}
{{- else if hasSuffix "s" $d -}}{{- $secs = int (trimSuffix "s" $d) -}}
{{- else if hasSuffix "m" $d -}}{{- $secs = mul (int (trimSuffix "m" $d)) 60 -}}
{{- else -}}{{- $secs = int $d -}}
{{- end -}}
{{- $drain = max $drain $secs -}}
{{- end -}}
{{- $drain -}}
{{- end -}}

{{- define "loopscope.sentryEgress" -}}
- ports:
    {{- range .Values.networkPolicy.sentry.ports }}
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
  to:
    {{- range .Values.networkPolicy.sentry.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
{{- end -}}
