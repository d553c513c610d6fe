#!/usr/bin/env bash
# kafka.sh up|down|stop|start|status -- a real single-node Apache Kafka 4.x broker (KRaft, combined
# broker+controller) for integration tests, with nothing but Maven and Java 17.
#
#   up      resolve the broker jars (once, with Maven), make a throwaway CA and server certificate,
#           format a fresh storage directory with a SCRAM-SHA-512 user, start the broker in the
#           background and wait until it serves. Prints the connection settings as KEY=value lines
#           on stdout (progress goes to stderr) and writes the same lines to $KAFKA_CACHE_DIR/env:
#             KAFKA_BROKERS        PLAINTEXT bootstrap address (127.0.0.1:9092)
#             KAFKA_SASL_BROKERS   SASL_SSL bootstrap address (127.0.0.1:9093, SCRAM-SHA-512)
#             KAFKA_SASL_USER, KAFKA_SASL_PASSWORD, KAFKA_SASL_CA (path of the CA PEM)
#             KAFKA_OAUTH_BROKERS  the same SASL_SSL listener, for OAUTHBEARER (unsecured JWTs:
#                                  Kafka's built-in test validator; trust KAFKA_SASL_CA)
#           Already running: prints the settings again and exits 0.
#   down    stop the broker this script started (SIGTERM, SIGKILL after $KAFKA_STOP_TIMEOUT s) and
#           remove its data, certificates and env file. Nothing running: exits 0.
#   stop    stop the broker (as down) but keep its data, certificates and env file.
#   start   start a broker stopped by 'stop' again, on the same ports with the same data.
#   status  exit 0 and print the settings when running, exit 3 when not.
#
# Typical use:
#   scripts/kafka.sh up && env $(cat .cache/kafka/env) go test ./internal/kafkatest/ && scripts/kafka.sh down
#
# Environment (all optional):
#   KAFKA_CACHE_DIR        where jars (lib/), run state (run/), broker.log and env live
#                          (default: <repo>/.cache/kafka; git-ignored). lib/ is reused across runs.
#   KAFKA_PORT, KAFKA_SASL_PORT, KAFKA_CONTROLLER_PORT   listener ports (9092, 9093, 9094)
#   KAFKA_HEAP_OPTS        broker heap flags (default: -Xms128m -Xmx512m)
#   KAFKA_JVM_OPTS         extra broker JVM flags
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to serve (default 90)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 20)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$repo/scripts/kafka
cache=${KAFKA_CACHE_DIR:-$repo/.cache/kafka}
lib=$cache/lib
run=$cache/run
env_file=$cache/env
log_file=$cache/broker.log
pid_file=$run/broker.pid

port=${KAFKA_PORT:-9092}
sasl_port=${KAFKA_SASL_PORT:-9093}
controller_port=${KAFKA_CONTROLLER_PORT:-9094}
heap_opts=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
jvm_opts=${KAFKA_JVM_OPTS:-}
start_timeout=${KAFKA_START_TIMEOUT:-90}
stop_timeout=${KAFKA_STOP_TIMEOUT:-20}
sasl_user=augment-test

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# tcp_open reports whether something accepts connections on 127.0.0.1:$1.
tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# broker_pid prints the recorded pid when that process is alive and is the broker we started
# (its command line names our config file), so a recycled pid is never signalled.
broker_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $run/server.properties" || return 1
  echo "$pid"
}

# alive reports whether process $1 exists and is not a zombie (a broker this script started and
# that already exited stays a zombie until the script ends).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# resolve_jars copies the broker's runtime class path into $lib once; a changed pom.xml
# invalidates it (the stamp is the pom's checksum).
resolve_jars() {
  local stamp
  stamp=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
  if [[ -f $lib/.stamp && $(<"$lib/.stamp") == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  say "resolving Kafka jars with Maven into $lib ..."
  local t0 tmp
  t0=$(now)
  tmp=$lib.tmp.$$
  rm -rf "$tmp"
  if ! mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "resolving jars with Maven failed"
  fi
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  say "jars resolved in $(elapsed "$t0")s ($(find "$lib" -name '*.jar' | wc -l) jars)"
}

java_tool() {
  java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$lib/*" "$@"
}

# make_tls writes a throwaway CA and a server certificate for 127.0.0.1/localhost; server.pem is
# the PEM keystore Kafka reads (unencrypted PKCS#8 key, then the certificate chain).
make_tls() {
  local dir=$1
  command -v openssl >/dev/null || die "openssl not found"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=augment-connector test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 30 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
  cat "$dir/server.key" "$dir/server.crt" "$dir/ca.pem" >"$dir/server.pem"
  rm -f "$dir/ca.key" "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
  chmod 600 "$dir/server.key" "$dir/server.pem"
}

# cluster_id prints a Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not
# starting with '-' (Kafka avoids those so the id is never taken for a CLI flag).
cluster_id() {
  local id
  while :; do
    id=$(openssl rand 16 | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  echo "$id"
}

print_env() { cat "$env_file"; }

cmd_status() {
  local pid
  if pid=$(broker_pid); then
    say "running (pid $pid), log $log_file"
    print_env
    return 0
  fi
  say "not running"
  return 3
}

cmd_up() {
  local pid
  if pid=$(broker_pid); then
    say "already running (pid $pid)"
    print_env
    return 0
  fi
  rm -rf "$run" "$env_file"

  local p
  for p in "$port" "$sasl_port" "$controller_port"; do
    tcp_open "$p" && die "port $p on 127.0.0.1 is already in use (set KAFKA_PORT/KAFKA_SASL_PORT/KAFKA_CONTROLLER_PORT)"
  done
  command -v java >/dev/null || die "java not found: install a Java 17 JRE"

  resolve_jars

  local t0
  t0=$(now)
  mkdir -p "$run/data" "$run/tls"
  make_tls "$run/tls"
  local password
  password=$(openssl rand -hex 16)
  sed -e "s|@PORT@|$port|g" -e "s|@SASL_PORT@|$sasl_port|g" \
    -e "s|@CONTROLLER_PORT@|$controller_port|g" -e "s|@DATA_DIR@|$run/data|g" \
    -e "s|@TLS_DIR@|$run/tls|g" "$here/server.properties.tmpl" >"$run/server.properties"

  if ! java_tool kafka.tools.StorageTool format -t "$(cluster_id)" -c "$run/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$password]" >"$run/format.log" 2>&1; then
    cat "$run/format.log" >&2
    die "formatting the storage directory failed"
  fi
  say "storage formatted in $(elapsed "$t0")s"

  if ! launch_broker; then
    rm -rf "$run"
    die "broker did not start; full log in $log_file"
  fi

  {
    echo "KAFKA_BROKERS=127.0.0.1:$port"
    echo "KAFKA_SASL_BROKERS=127.0.0.1:$sasl_port"
    echo "KAFKA_SASL_USER=$sasl_user"
    echo "KAFKA_SASL_PASSWORD=$password"
    echo "KAFKA_SASL_CA=$run/tls/ca.pem"
    echo "KAFKA_OAUTH_BROKERS=127.0.0.1:$sasl_port"
  } >"$env_file"
  print_env
}

# launch_broker starts the broker of $run/server.properties in the background and waits until
# it serves; it returns 1 (the broker stopped) when it exits or does not serve in time.
launch_broker() {
  local t0 pid
  t0=$(now)
  # fd 9 holds the script's lock: the broker must not inherit it, or 'down' would wait on it.
  # shellcheck disable=SC2086
  nohup java $heap_opts -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    $jvm_opts -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$lib/*" \
    kafka.Kafka "$run/server.properties" </dev/null >"$log_file" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pid_file"

  local deadline=$((SECONDS + start_timeout))
  while :; do
    # alive, not broker_pid: right after the fork the child may not have exec'ed java yet.
    if ! alive "$pid"; then
      sleep 0.2 # let the last log lines reach the file
      tail -n 40 "$log_file" >&2 || true
      say "broker exited during start"
      return 1
    fi
    if grep -q 'Kafka Server started' "$log_file" && tcp_open "$port" && tcp_open "$sasl_port"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$log_file" >&2 || true
      say "broker did not start within ${start_timeout}s"
      stop_broker keep
      return 1
    fi
    sleep 0.2
  done
  say "broker started in $(elapsed "$t0")s (pid $(<"$pid_file")), log $log_file"
}

# stop_broker signals only the recorded broker process, then removes the run state (unless
# $1 is "keep": the data, certificates and env file stay for 'start').
stop_broker() {
  local pid
  if pid=$(broker_pid); then
    say "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    local killed=
    # broker_pid, not kill -0: a broker this very script started turns into a zombie when it
    # exits, and a zombie's empty command line no longer matches.
    while broker_pid >/dev/null; do
      if [[ -z $killed ]] && ((SECONDS >= deadline)); then
        say "broker still running after ${stop_timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        killed=1
      fi
      sleep 0.2
    done
    # Give init a moment to reap the exited broker so that no <defunct> java is left listed.
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
      [[ -e /proc/$pid ]] || break
      sleep 0.2
    done
  elif [[ -f $pid_file ]]; then
    say "recorded pid $(<"$pid_file") is not our broker any more; not signalling it"
  fi
  [[ ${1:-} == keep ]] || rm -rf "$run" "$env_file"
}

cmd_stop() {
  stop_broker keep
  say "stopped; data kept ('start' resumes it, 'down' removes it)"
}

cmd_start() {
  local pid p
  if pid=$(broker_pid); then
    say "already running (pid $pid)"
    print_env
    return 0
  fi
  [[ -f $run/server.properties && -f $env_file ]] || die "nothing to start: run 'up' first"
  for p in "$port" "$sasl_port" "$controller_port"; do
    tcp_open "$p" && die "port $p on 127.0.0.1 is already in use"
  done
  launch_broker || die "broker did not start; full log in $log_file"
  print_env
}

cmd_down() {
  stop_broker
  say "down"
}

main() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop ;;
    start) cmd_start ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 up|down|stop|start|status" >&2
      exit 2
      ;;
  esac
}

main "$@"
