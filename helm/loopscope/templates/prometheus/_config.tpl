{{/* prometheus.yml of the bundled Prometheus. Prometheus 2.x syntax, so Debian's promtool
(2.42) can check it and the 3.x server runs it. */}}
{{- define "loopscope.prometheusConfig" -}}
global:
  scrape_interval: {{ .Values.prometheus.scrapeInterval }}
  scrape_timeout: {{ .Values.prometheus.scrapeTimeout }}
  evaluation_interval: {{ .Values.prometheus.evaluationInterval }}
  {{- with .Values.prometheus.externalLabels }}
  external_labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}

rule_files:
  - /etc/prometheus/rules/*.yml

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
        labels:
          namespace: {{ .Release.Namespace | quote }}

  # Every pod of this release annotated prometheus.io/scrape: "true", on the
  # port of prometheus.io/port (which must be a declared container port) and the path of
  # prometheus.io/path. The loopscope services add `service` and `handling` to their own
  # series; honor_labels keeps those should a target label ever clash.
  - job_name: kubernetes-pods
    honor_labels: true
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names:
            - {{ .Release.Namespace | quote }}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        regex: "true"
        action: keep
      # This release's pods only: two releases in one namespace keep their own targets,
      # so their rules, dashboards and helm tests do not mix.
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_label_app_kubernetes_io_instance]
        regex: {{ printf "%s;%s" (include "loopscope.name" . | regexQuoteMeta) (.Release.Name | regexQuoteMeta) | quote }}
        action: keep
      # Finished pods (helm test pods, jobs) have nothing to scrape.
      - source_labels: [__meta_kubernetes_pod_phase]
        regex: Succeeded|Failed
        action: drop
      # One target per pod: the container port named by the annotation. (Service
      # discovery yields a target per declared port.)
      - source_labels: [__meta_kubernetes_pod_container_port_number]
        target_label: __meta_kubernetes_pod_annotation_prometheus_io_port
        action: keepequal
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        regex: (.+)
        target_label: __metrics_path__
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scheme]
        regex: (https?)
        target_label: __scheme__
      # job: the component (gateway, worker-async, ...), as the local stack names its jobs.
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
        regex: (.+)
        target_label: job
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
{{- end -}}
