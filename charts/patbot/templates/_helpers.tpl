{{/*
Names and labels.
*/}}
{{- define "patbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "patbot.fullname" -}}
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

{{- define "patbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "patbot.labels" -}}
helm.sh/chart: {{ include "patbot.chart" . }}
{{ include "patbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "patbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "patbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The bot's own pods, as opposed to the job and Redis pods of the same release. */}}
{{- define "patbot.botSelectorLabels" -}}
{{ include "patbot.selectorLabels" . }}
app.kubernetes.io/component: bot
{{- end }}

{{- define "patbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "patbot.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret whose keys become the containers' environment (credentials). */}}
{{- define "patbot.secretName" -}}
{{- default (include "patbot.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
Redis.
*/}}
{{- define "patbot.redis.fullname" -}}
{{- printf "%s-redis" (include "patbot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "patbot.redis.selectorLabels" -}}
{{ include "patbot.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "patbot.redis.secretName" -}}
{{- default (include "patbot.redis.fullname" .) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "patbot.redis.secretKey" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecretKey }}
{{- else -}}
redis-password
{{- end }}
{{- end }}

{{/* Whether the bot has a store shared between processes (and surviving their restarts). */}}
{{- define "patbot.sharedStore" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.enabled }}true{{ end }}
{{- end }}

{{/*
Fail on settings that cannot work together, with one line saying what to change.
Included by every template that renders a workload, so `helm template` and `helm install`
stop before anything is applied.
*/}}
{{- define "patbot.validate" -}}
{{- $v := .Values }}
{{- if not $v.config.adminChannel }}
{{- fail "config.adminChannel is required: the channel ID (C…) that receives approval requests and summaries" }}
{{- end }}
{{- if not $v.config.approvers }}
{{- fail "config.approvers is required: Slack user IDs (U…/W…) or user-group IDs (S…) allowed to approve" }}
{{- end }}
{{- if not (or $v.databricks.host $v.databricks.workspaces $v.databricks.accountId) }}
{{- fail "one of databricks.host, databricks.workspaces or databricks.accountId is required" }}
{{- end }}
{{- if and $v.redis.enabled $v.externalRedis.enabled }}
{{- fail "redis.enabled and externalRedis.enabled are mutually exclusive: choose the bundled Redis or an external one" }}
{{- end }}
{{- if and $v.externalRedis.enabled (not $v.externalRedis.existingSecret) }}
{{- fail "externalRedis.existingSecret is required when externalRedis.enabled: a Secret holding the Redis URL" }}
{{- end }}
{{- if not (include "patbot.sharedStore" .) }}
{{- if gt (int $v.replicaCount) 1 }}
{{- fail "replicaCount > 1 needs a shared Redis: set redis.enabled or externalRedis.enabled (the embedded store lives in one process)" }}
{{- end }}
{{- if $v.autoscaling.enabled }}
{{- fail "autoscaling.enabled needs a shared Redis: set redis.enabled or externalRedis.enabled (the embedded store lives in one process)" }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- fail "podDisruptionBudget.enabled needs more than one replica, hence a shared Redis: set redis.enabled or externalRedis.enabled" }}
{{- end }}
{{- if $v.cronJobs.enabled }}
{{- fail "cronJobs.enabled needs a shared Redis: each job runs in its own pod and must remember who was DMed this week; set redis.enabled or externalRedis.enabled, or disable cronJobs to use the in-process scheduler" }}
{{- end }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not $v.autoscaling.enabled) (le (int $v.replicaCount) (int $v.podDisruptionBudget.minAvailable)) }}
{{- fail "podDisruptionBudget.minAvailable must be below replicaCount, or no node could ever be drained" }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled $v.autoscaling.enabled (le (int $v.autoscaling.minReplicas) (int $v.podDisruptionBudget.minAvailable)) }}
{{- fail "podDisruptionBudget.minAvailable must be below autoscaling.minReplicas, or no node could ever be drained" }}
{{- end }}
{{- if and $v.slack.socketMode $v.ingress.enabled }}
{{- fail "ingress.enabled makes no sense with slack.socketMode: Slack sends nothing over HTTP in Socket Mode" }}
{{- end }}
{{- if not $v.existingSecret }}
{{- if not (and $v.secret.slackBotToken $v.secret.slackSigningSecret) }}
{{- fail "set existingSecret, or secret.slackBotToken and secret.slackSigningSecret" }}
{{- end }}
{{- if and $v.slack.socketMode (not $v.secret.slackAppToken) }}
{{- fail "slack.socketMode needs secret.slackAppToken (an xapp- app-level token), or existingSecret with SLACK_APP_TOKEN" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The containers' environment, shared by the bot and the jobs: the ConfigMap and the
credentials Secret as a whole, then REDIS_URL for the chosen Redis.
*/}}
{{- define "patbot.envFrom" -}}
- configMapRef:
    name: {{ include "patbot.fullname" . }}
- secretRef:
    name: {{ include "patbot.secretName" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "patbot.env" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "patbot.redis.secretName" . }}
      key: {{ include "patbot.redis.secretKey" . }}
- name: REDIS_URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "patbot.redis.fullname" . }}:6379/0"
{{- else if .Values.externalRedis.enabled }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes: /tmp is the only writable place (the root filesystem is read-only). */}}
{{- define "patbot.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "patbot.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod spec fragments shared by the Deployment and the CronJobs. */}}
{{- define "patbot.podCommon" -}}
serviceAccountName: {{ include "patbot.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "patbot.volumes" . | nindent 2 }}
{{- end }}

{{/* Checksums that roll the pods when the chart-managed configuration or secrets change. */}}
{{- define "patbot.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- include "patbot.redis.passwordChecksum" . }}
{{- end }}

{{/*
A generated Redis password never changes (redis-secret.yaml keeps the one in the cluster), so
only a password given in the values needs to roll the pods when it changes.
*/}}
{{- define "patbot.redis.passwordChecksum" -}}
{{- if and .Values.redis.enabled (not .Values.redis.auth.existingSecret) .Values.redis.auth.password }}
checksum/redis-password: {{ .Values.redis.auth.password | sha256sum }}
{{- end }}
{{- end }}

{{/*
A weekly CronJob running one `patbot` command. Called with
(dict "root" $ "command" "remind" "job" .Values.cronJobs.remind).
*/}}
{{- define "patbot.cronJob" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $cj := $v.cronJobs }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ printf "%s-%s" (include "patbot.fullname" $root) .command | trunc 52 | trimSuffix "-" }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "patbot.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .command }}
spec:
  schedule: {{ .job.schedule | quote }}
  {{- with $v.config.timezone }}
  timeZone: {{ . | quote }}
  {{- end }}
  # A run still going when the next is due is left alone: the commands are idempotent per
  # ISO week, and two at once would only compete for Slack's rate limits.
  concurrencyPolicy: Forbid
  suspend: {{ $cj.suspend }}
  startingDeadlineSeconds: {{ $cj.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $cj.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $cj.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "patbot.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .command }}
    spec:
      backoffLimit: {{ $cj.backoffLimit }}
      activeDeadlineSeconds: {{ $cj.activeDeadlineSeconds }}
      {{- if not (kindIs "invalid" $cj.ttlSecondsAfterFinished) }}
      ttlSecondsAfterFinished: {{ $cj.ttlSecondsAfterFinished }}
      {{- end }}
      template:
        metadata:
          labels:
            {{- include "patbot.labels" $root | nindent 12 }}
            app.kubernetes.io/component: {{ .command }}
            {{- with $v.podLabels }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- /* No checksums: every run is a new pod that reads the current configuration. */}}
          {{- with $v.podAnnotations }}
          annotations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        spec:
          restartPolicy: Never
          {{- include "patbot.podCommon" $root | nindent 10 }}
          containers:
            - name: {{ .command }}
              image: {{ include "patbot.image" $root | quote }}
              imagePullPolicy: {{ $v.image.pullPolicy }}
              args:
                - {{ .command }}
                {{- range .job.extraArgs }}
                - {{ . | quote }}
                {{- end }}
              envFrom:
                {{- include "patbot.envFrom" $root | nindent 16 }}
              env:
                - name: PATBOT_SCHEDULER
                  value: "off"
                {{- include "patbot.env" $root | trim | nindent 16 }}
              {{- with (default $v.resources $cj.resources) }}
              resources:
                {{- toYaml . | nindent 16 }}
              {{- end }}
              securityContext:
                {{- toYaml $v.securityContext | nindent 16 }}
              volumeMounts:
                {{- include "patbot.volumeMounts" $root | nindent 16 }}
{{- end }}
