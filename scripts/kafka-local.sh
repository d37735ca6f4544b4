#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1 without Docker.
#
# The broker jars come from Maven Central (the only place we can download from),
# resolved by Maven into a project-local cache. Everything lives under
# <repo>/.cache/kafka/ so it is git-ignored and easy to wipe.
#
# Usage: scripts/kafka-local.sh {fetch|fetch-tools|start|stop|kill|status|reset}
#   fetch   download the broker jars (skipped when already complete)
#   fetch-tools  download the client tools (ConsoleProducer, ConsoleConsumer) into
#           their own directory; prints it on stdout (the fault tests run them)
#   start   fetch if needed, format storage once, start the broker, wait until it answers
#   stop    SIGTERM, then SIGKILL after KAFKA_LOCAL_STOP_TIMEOUT seconds
#   kill    SIGKILL at once (a crashed broker JVM, for the fault tests)
#   status  exit 0 when the broker answers a metadata request
#   reset   stop and delete the data dir (next start formats a fresh cluster)
# Every subcommand is idempotent.
#
# Environment:
#   KAFKA_LOCAL_PORT             client (PLAINTEXT) port      [19092]
#   KAFKA_LOCAL_CONTROLLER_PORT  KRaft controller port        [19093]
#   KAFKA_HEAP_OPTS              JVM heap                     [-Xms256m -Xmx512m]
#   KAFKA_LOCAL_START_TIMEOUT    seconds to wait for readiness [90]
#   KAFKA_LOCAL_STOP_TIMEOUT     seconds before SIGKILL       [30]
#   KAFKA_LOCAL_RUN_DIR          config, data, pid and log     [<repo>/.cache/kafka/run]
#                                (a second instance needs its own, and its own ports)
#   KAFKA_LOCAL_AUTO_CREATE      auto.create.topics.enable     [true]
#
# Optional SASL_SSL listener (for the fault suite; controller and inter-broker traffic
# stay PLAINTEXT, and readiness is still probed on the PLAINTEXT port):
#   KAFKA_LOCAL_SASL_SSL_PORT    port of a SASL_SSL listener   [unset: none]
#   KAFKA_LOCAL_TLS_DIR          PEM files: broker.crt (the broker's certificate, then
#                                its chain; SAN IP:127.0.0.1) and broker.key (unencrypted
#                                PKCS#8 key)
#   KAFKA_LOCAL_SASL_USER        SASL user for SCRAM-SHA-512 and PLAIN
#   KAFKA_LOCAL_SASL_PASSWORD    its password (no quotes, backslashes, brackets, commas,
#                                = or white space)
# SCRAM credentials are written when the storage is formatted, so they only change
# after a reset (or with a fresh KAFKA_LOCAL_RUN_DIR).
set -euo pipefail

# Keep in sync with the apache/kafka image tag in docker-compose.yml.
KAFKA_VERSION="4.1.1"
SCALA_VERSION="2.13"
# log4j-core is resolved transitively, but no SLF4J binding is: kafka 4.1 still
# logs through slf4j-api 1.7.x, so without log4j-slf4j-impl the broker would be
# silent (SLF4J NOP). Pin it to the log4j-core version Kafka resolves.
LOG4J_VERSION="2.24.3"
# Pinned so Maven does not have to look up "latest plugin" metadata.
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

PORT="${KAFKA_LOCAL_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_LOCAL_CONTROLLER_PORT:-19093}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
START_TIMEOUT="${KAFKA_LOCAL_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_LOCAL_STOP_TIMEOUT:-30}"
AUTO_CREATE="${KAFKA_LOCAL_AUTO_CREATE:-true}"
SASL_SSL_PORT="${KAFKA_LOCAL_SASL_SSL_PORT:-}"
TLS_DIR="${KAFKA_LOCAL_TLS_DIR:-}"
SASL_USER="${KAFKA_LOCAL_SASL_USER:-}"
SASL_PASSWORD="${KAFKA_LOCAL_SASL_PASSWORD:-}"
HOST="127.0.0.1"
BOOTSTRAP="${HOST}:${PORT}"

# Repo root from the script's own location, so it works from any cwd.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${REPO_ROOT}/.cache/kafka"
VERSION_DIR="${CACHE_DIR}/${KAFKA_VERSION}"
LIBS_DIR="${VERSION_DIR}/libs"
LIBS_COMPLETE="${VERSION_DIR}/.complete"
TOOLS_DIR="${VERSION_DIR}/tools"
TOOLS_COMPLETE="${VERSION_DIR}/.tools-complete"
RUN_DIR="${KAFKA_LOCAL_RUN_DIR:-${CACHE_DIR}/run}"
DATA_DIR="${RUN_DIR}/data"
PID_FILE="${RUN_DIR}/kafka.pid"
LOG_FILE="${RUN_DIR}/kafka.log"
SERVER_PROPS="${RUN_DIR}/server.properties"
LOG4J_PROPS="${RUN_DIR}/log4j2.properties"
CLUSTER_ID_FILE="${RUN_DIR}/cluster.id"
VENV_PY="${REPO_ROOT}/.venv/bin/python"

# True while pid exists and is not a zombie (containers may lack a reaping init).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ "${state}" != "Z" ]]
}

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Serialise start/stop/reset (e.g. parallel test workers all calling start).
# fd 9 is closed for the broker itself so it never holds the lock.
lock() {
  mkdir -p "${CACHE_DIR}"
  exec 9>"${CACHE_DIR}/.lock"
  flock -w 180 9 || die "timed out waiting for ${CACHE_DIR}/.lock"
}

# ---------------------------------------------------------------- fetch ----

# resolve <dir> <artifactId> <marker jar>: Maven resolves org.apache.kafka:<artifactId>
# plus an SLF4J binding (kafka 4.1 still logs through slf4j-api 1.7.x; without
# log4j-slf4j-impl it would be silent) with their runtime dependencies into <dir>.
resolve() {
  local dir="$1" artifact="$2" marker="$3"
  command -v mvn >/dev/null || die "mvn not found (needed to fetch Kafka jars)"
  command -v java >/dev/null || die "java not found"
  log "fetching org.apache.kafka:${artifact}:${KAFKA_VERSION} from Maven Central"
  mkdir -p "${VERSION_DIR}"
  local pom="${VERSION_DIR}/${artifact}.pom.xml" fetch_log="${VERSION_DIR}/fetch-${artifact}.log"
  cat >"${pom}" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka-local.sh: only used to resolve Kafka jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka</groupId>
  <artifactId>${artifact}-local-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>${artifact}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
  # Copy into a temp dir and rename at the end, so an interrupted fetch never
  # looks complete.
  local tmp="${dir}.tmp"
  rm -rf "${tmp}"
  # Maven output goes to a file: even -q -B leaks ANSI resets on stdout, and
  # `start` prints only the bootstrap address there.
  if ! mvn -q -B -f "${pom}" \
      "${DEPENDENCY_PLUGIN}:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="${tmp}" \
      >"${fetch_log}" 2>&1; then
    tail -n 30 "${fetch_log}" >&2
    rm -rf "${tmp}"
    die "maven could not resolve ${artifact} ${KAFKA_VERSION} (see ${fetch_log})"
  fi
  [[ -f "${tmp}/${marker}" ]] || die "${marker} missing after fetch"
  rm -rf "${dir}"
  mv "${tmp}" "${dir}"
  log "jars in ${dir} ($(du -sh "${dir}" | cut -f1))"
}

fetch() {
  if [[ -f "${LIBS_COMPLETE}" && -f "${LIBS_DIR}/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" ]]; then
    return 0
  fi
  resolve "${LIBS_DIR}" "kafka_${SCALA_VERSION}" "kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar"
  touch "${LIBS_COMPLETE}"
}

# The client tools (kafka-tools: ConsoleProducer, ConsoleConsumer) in a directory of
# their own, so the broker's classpath stays exactly what it was.
fetch_tools() {
  if [[ ! -f "${TOOLS_COMPLETE}" || ! -f "${TOOLS_DIR}/kafka-tools-${KAFKA_VERSION}.jar" ]]; then
    resolve "${TOOLS_DIR}" kafka-tools "kafka-tools-${KAFKA_VERSION}.jar"
    # The compression codecs are runtime dependencies of kafka-clients; the fault
    # suite produces with every one of them, so a missing jar is a failed fetch.
    local codec
    for codec in snappy-java lz4-java zstd-jni; do
      compgen -G "${TOOLS_DIR}/${codec}-*.jar" >/dev/null \
        || die "${codec} jar missing from ${TOOLS_DIR}"
    done
    # Tools log warnings and errors to stderr; their stdout is theirs alone.
    cat >"${TOOLS_DIR}/log4j2.properties" <<'EOF'
# Generated by scripts/kafka-local.sh for the client tools.
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
    touch "${TOOLS_COMPLETE}"
  fi
  echo "${TOOLS_DIR}"
}

# --------------------------------------------------------------- config ----

# The optional SASL_SSL listener's settings, checked before anything is written.
check_sasl_ssl() {
  [[ -n "${SASL_SSL_PORT}" ]] || return 0
  [[ "${SASL_SSL_PORT}" =~ ^[0-9]+$ ]] || die "KAFKA_LOCAL_SASL_SSL_PORT is not a port: ${SASL_SSL_PORT}"
  [[ -n "${TLS_DIR}" ]] || die "KAFKA_LOCAL_SASL_SSL_PORT needs KAFKA_LOCAL_TLS_DIR"
  local f
  for f in broker.crt broker.key; do
    [[ -s "${TLS_DIR}/${f}" ]] || die "KAFKA_LOCAL_TLS_DIR has no ${f}: ${TLS_DIR}"
  done
  [[ -n "${SASL_USER}" && -n "${SASL_PASSWORD}" ]] \
    || die "KAFKA_LOCAL_SASL_SSL_PORT needs KAFKA_LOCAL_SASL_USER and KAFKA_LOCAL_SASL_PASSWORD"
  # Both go into a JAAS string in double quotes, into --add-scram's [name=..,password=..]
  # and onto one properties line.
  local bad='[]["\\,=[:space:]]' what='quotes, backslashes, brackets, commas, = or spaces'
  [[ ! "${SASL_USER}" =~ ${bad} ]] || die "KAFKA_LOCAL_SASL_USER may not hold ${what}"
  [[ ! "${SASL_PASSWORD}" =~ ${bad} ]] || die "KAFKA_LOCAL_SASL_PASSWORD may not hold ${what}"
}

# A PEM file as one properties value: newlines become \n escapes, which the
# properties reader turns back into newlines.
pem_value() { awk '{ printf "%s\\n", $0 }' "$1"; }

write_config() {
  mkdir -p "${RUN_DIR}" "${DATA_DIR}"
  local listeners="PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n "${SASL_SSL_PORT}" ]]; then
    listeners+=",SASL_SSL://${HOST}:${SASL_SSL_PORT}"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  # Rewritten on every start so edits to this script take effect.
  cat >"${SERVER_PROPS}" <<EOF
# Generated by scripts/kafka-local.sh -- edits are overwritten on start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=${HOST}:${CONTROLLER_PORT}
listeners=${listeners}
advertised.listeners=${listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${protocols}
log.dirs=${DATA_DIR}
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=${AUTO_CREATE}
EOF
  if [[ -n "${SASL_SSL_PORT}" ]]; then
    # PEM key and chain inline: an unencrypted key needs no password only this way
    # (a PEM keystore file requires an encrypted key).
    cat >>"${SERVER_PROPS}" <<EOF
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.certificate.chain=$(pem_value "${TLS_DIR}/broker.crt")
listener.name.sasl_ssl.ssl.keystore.key=$(pem_value "${TLS_DIR}/broker.key")
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SASL_USER}="${SASL_PASSWORD}";
EOF
    # It holds a password and a private key.
    chmod 600 "${SERVER_PROPS}"
  fi
  # Properties (not YAML) config: log4j-core reads it without extra jars.
  cat >"${LOG4J_PROPS}" <<'EOF'
# Generated by scripts/kafka-local.sh. Console output goes to kafka.log.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Chatty at INFO and not useful for a dev broker.
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

java_cmd() {
  # Mirrors the essentials of kafka-run-class.sh (no bin/ scripts in the jars).
  # shellcheck disable=SC2086  # HEAP_OPTS is a list of flags
  printf '%s\0' java ${HEAP_OPTS} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -Djava.awt.headless=true \
    "-Dkafka.logs.dir=${RUN_DIR}" \
    "-Dlog4j2.configurationFile=${LOG4J_PROPS}" \
    -cp "${LIBS_DIR}/*" "$@"
}

format_storage() {
  # meta.properties is written by a successful format. (Changing the ports
  # later is fine: the single voter re-registers its new endpoint.)
  if [[ -f "${DATA_DIR}/meta.properties" ]]; then
    return 0
  fi
  # Keep one cluster id per data dir lifetime (reset deletes it).
  # Same format as `StorageTool random-uuid` (16 random bytes, base64url, no
  # padding) without paying for another JVM start.
  if [[ ! -s "${CLUSTER_ID_FILE}" ]]; then
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"${CLUSTER_ID_FILE}"
  fi
  log "formatting storage (cluster id $(cat "${CLUSTER_ID_FILE}"))"
  local -a fmt
  local -a scram=()
  if [[ -n "${SASL_SSL_PORT}" ]]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=${SASL_USER},password=${SASL_PASSWORD}]")
  fi
  mapfile -d '' fmt < <(java_cmd kafka.tools.StorageTool format --standalone \
    "--cluster-id=$(cat "${CLUSTER_ID_FILE}")" -c "${SERVER_PROPS}" --ignore-formatted "${scram[@]}")
  "${fmt[@]}" >"${RUN_DIR}/format.log" 2>&1 \
    || { tail -n 20 "${RUN_DIR}/format.log" >&2; die "storage format failed"; }
}

# ------------------------------------------------------------ liveness -----

# PID from the pid file, only if that process is still our broker (guards
# against a stale pid file whose pid was reused).
our_pid() {
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(cat "${PID_FILE}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  alive "${pid}" || return 1
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF "kafka.Kafka ${SERVER_PROPS}" || return 1
  echo "${pid}"
}

# Preferred check: aiokafka admin client from the project venv (real metadata
# round trip with at least one live broker).
answers_aiokafka() {
  "${VENV_PY}" - "${BOOTSTRAP}" <<'EOF' >/dev/null 2>&1
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
    await asyncio.wait_for(admin.start(), 5)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        assert cluster["brokers"], "no live brokers"
    finally:
        await admin.close()

asyncio.run(main())
EOF
}

# Fallback without Python deps: a raw Metadata v4 request over bash /dev/tcp.
# Kafka 4 dropped Metadata v0-v3 (KIP-896), so v4 is the oldest that works.
# Request: size=15 | api_key=3 | api_version=4 | correlation_id=1 |
#          client_id=null | topics=null (all) | allow_auto_topic_creation=false
# Response starts: size | correlation_id | throttle_time_ms | broker count
answers_tcp() {
  local reply
  # shellcheck disable=SC2016  # $1/$2 expand in the inner bash, on purpose
  reply="$(
    timeout 5 bash -c '
      exec 3<>"/dev/tcp/$1/$2" || exit 1
      printf "\x00\x00\x00\x0f\x00\x03\x00\x04\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\x00" >&3
      head -c 16 <&3 | od -An -tx1 | tr -d " \n"
    ' _ "${HOST}" "${PORT}" 2>/dev/null
  )" || return 1
  # correlation id must echo back as 1, and the broker list must be non-empty.
  [[ ${#reply} -eq 32 && "${reply:8:8}" == "00000001" ]] || return 1
  (( 16#${reply:24:8} >= 1 ))
}

answers() {
  if [[ -x "${VENV_PY}" ]] && "${VENV_PY}" -c 'import aiokafka.admin' 2>/dev/null; then
    answers_aiokafka
  else
    answers_tcp
  fi
}

# ------------------------------------------------------------ commands -----

start() {
  local pid
  if pid="$(our_pid)"; then
    if answers; then
      log "already running (pid ${pid})"
      echo "${BOOTSTRAP}"
      return 0
    fi
    log "pid ${pid} is running but not answering yet; waiting"
  else
    # Something else on our port would make the checks lie; refuse.
    if answers_tcp; then
      die "a Kafka broker not started by this script answers on ${BOOTSTRAP}; stop it or set KAFKA_LOCAL_PORT"
    fi
    check_sasl_ssl
    fetch
    write_config
    format_storage
    # Keep the previous log for post-mortems.
    if [[ -f "${LOG_FILE}" ]]; then mv -f "${LOG_FILE}" "${LOG_FILE}.1"; fi
    local -a cmd
    mapfile -d '' cmd < <(java_cmd kafka.Kafka "${SERVER_PROPS}")
    # setsid + nohup: the broker must outlive this script and its terminal.
    setsid nohup "${cmd[@]}" >"${LOG_FILE}" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "${pid}" >"${PID_FILE}"
    log "started pid ${pid}, log ${LOG_FILE}"
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! alive "${pid}"; then
      tail -n 30 "${LOG_FILE}" >&2 || true
      rm -f "${PID_FILE}"
      die "broker exited during startup (see ${LOG_FILE})"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 30 "${LOG_FILE}" >&2 || true
      die "broker did not answer on ${BOOTSTRAP} within ${START_TIMEOUT}s (still running as pid ${pid})"
    fi
    sleep 1
  done
  log "ready on ${BOOTSTRAP}"
  echo "${BOOTSTRAP}"
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "${PID_FILE}"
    log "not running"
    return 0
  fi
  log "stopping pid ${pid}"
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "${pid}"; do
    if (( SECONDS >= deadline )); then
      log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  # SIGKILL is not instant; make sure it is gone before dropping the pid file.
  while alive "${pid}"; do sleep 0.2; done
  rm -f "${PID_FILE}"
  log "stopped"
}

kill_now() {
  local pid
  if ! pid="$(our_pid)"; then
    log "not running"
    return 0
  fi
  log "killing pid ${pid} (SIGKILL)"
  kill -KILL "${pid}" 2>/dev/null || true
  while alive "${pid}"; do sleep 0.1; done
  rm -f "${PID_FILE}"
  log "killed"
}

status() {
  local pid
  if answers; then
    if pid="$(our_pid)"; then
      log "running (pid ${pid}) on ${BOOTSTRAP}"
    else
      log "a broker answers on ${BOOTSTRAP} (not started by this script)"
    fi
    return 0
  fi
  if pid="$(our_pid)"; then
    log "pid ${pid} running but not answering on ${BOOTSTRAP}"
  else
    log "not running"
  fi
  return 1
}

reset() {
  stop
  rm -rf "${DATA_DIR}" "${CLUSTER_ID_FILE}" "${RUN_DIR}/format.log"
  log "data dir removed"
}

case "${1:-}" in
  fetch) lock; fetch; log "jars ready in ${LIBS_DIR}" ;;
  fetch-tools) lock; fetch_tools ;;
  start) lock; start ;;
  stop) lock; stop ;;
  kill) lock; kill_now ;;
  status) status ;;
  reset) lock; reset ;;
  *)
    echo "usage: $0 {fetch|fetch-tools|start|stop|kill|status|reset}" >&2
    exit 2
    ;;
esac
