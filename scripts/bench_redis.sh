# The `redis` section of scripts/bench.sh (issue 15), sourced by it after the
# release build: `bash scripts/bench.sh redis`. Not meant to run alone.
#
# One local redis-server (unix socket, append-only file fsynced every
# second, as in compose.yaml) and two release servers side by side: one on
# that Redis, one on files. Each has one dashboard key (verified once, then
# cached) and the env key. wrk runs, interleaved ROUNDS times:
#   redis: GET /api/health, GET /api/me with the dashboard key, with the env key
#   files: GET /api/health, GET /api/me with the dashboard key
# Per run: req/s, latency, Portico's (and Redis's) CPU per request, and per
# request: the round trips (Portico's portico_redis_round_trips_total, every
# command or script it sent), and from Redis's side (`INFO commandstats`
# before and after) the scripts it ran and all the commands it executed,
# those inside scripts included. Targets: the dashboard key through Redis
# >= 0.5 x health on the same instance; 1 round trip per API-key request.

REDIS_DIR="$WORK/redis"
REDIS_PID=
BENCH_PIDS=()
redis_cleanup() {
  for pid in "${BENCH_PIDS[@]}" $REDIS_PID; do kill "$pid" 2>/dev/null || true; done
  cleanup
}
trap redis_cleanup EXIT

command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null

mkdir -p "$REDIS_DIR"
redis-server --port 0 --unixsocket "$REDIS_DIR/redis.sock" --unixsocketperm 700 --dir "$REDIS_DIR" \
  --save '' --appendonly yes --appendfsync everysec --logfile "$REDIS_DIR/redis.log" </dev/null &
REDIS_PID=$!
for _ in $(seq 100); do
  redis-cli -s "$REDIS_DIR/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -s "$REDIS_DIR/redis.sock" ping >/dev/null || { echo "redis-server did not start" >&2; exit 1; }

declare -A BENCH_PORT BENCH_PID BENCH_KEY
for mode in redis files; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  store=()
  [ "$mode" = redis ] && store=(REDIS_URL="unix://$REDIS_DIR/redis.sock")
  env -i PATH="$PATH" HOME="$HOME" BIND="127.0.0.1:$port" DATA_DIR="$WORK/data-$mode" \
    PUBLIC_URL="http://127.0.0.1:$port" ADMIN_API_KEY="$ADMIN_KEY" VALID_API_KEYS="$ENV_KEY" \
    API_RATE_LIMIT=1000000000 RUST_LOG=info "${store[@]}" "$BIN" >>"$WORK/server-$mode.log" 2>&1 &
  BENCH_PIDS+=($!)
  BENCH_PID[$mode]=$!
  BENCH_PORT[$mode]=$port
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
  key=$(curl -s -H "x-api-key: $ADMIN_KEY" -H 'content-type: application/json' -d '{"name": "bench"}' \
    "http://127.0.0.1:$port/api/keys" | jq -r .key)
  [ -n "$key" ] && [ "$key" != null ] || { echo "$mode: could not create a key" >&2; cat "$WORK/server-$mode.log" >&2; exit 1; }
  curl -sf -H "x-api-key: $key" "http://127.0.0.1:$port/api/me" >/dev/null # verified once, then cached
  BENCH_KEY[$mode]=$key
done
curl -s "http://127.0.0.1:${BENCH_PORT[redis]}/api/health" | grep -q '"store":"redis"' ||
  { echo "the Redis-mode server does not report store=redis" >&2; exit 1; }

# Redis's counts: every command it executed (those inside scripts too), and
# the scripts (EVALSHA/EVAL) among them.
redis_counts() {
  redis-cli -s "$REDIS_DIR/redis.sock" INFO commandstats | awk -F'[:,=]' '
    /^cmdstat_/ { total += $3 }
    /^cmdstat_(evalsha|eval):/ { scripts += $3 }
    END { print total + 0, scripts + 0 }'
}
# Portico's count of commands and scripts it sent: its round trips.
round_trips() { # mode
  curl -s "http://127.0.0.1:${BENCH_PORT[$1]}/metrics" |
    awk '/^portico_redis_round_trips_total/ { print $2; found = 1 } END { if (!found) print 0 }'
}
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# redis_wrk NAME MODE PATH [HEADER]: one bounded run; appends a row.
REDIS_ROWS="$WORK/redis-rows"
redis_wrk() {
  local name=$1 mode=$2 path=$3 header=${4:-}
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency --timeout 5s)
  [ -n "$header" ] && args+=(-H "$header")
  local pid=${BENCH_PID[$mode]} counts_before counts_after trips_before trips_after
  local cpu_before cpu_after redis_before redis_after out
  out="$WORK/wrk-redis-$name.txt"
  trips_before=$(round_trips "$mode")
  counts_before=$(redis_counts)
  cpu_before=$(ticks_of "$pid")
  redis_before=$(ticks_of "$REDIS_PID")
  timeout $((DURATION + 30)) wrk "${args[@]}" "http://127.0.0.1:${BENCH_PORT[$mode]}$path" >"$out"
  redis_after=$(ticks_of "$REDIS_PID")
  cpu_after=$(ticks_of "$pid")
  counts_after=$(redis_counts)
  trips_after=$(round_trips "$mode")
  # Less one command: the first INFO is counted in the second one's figures.
  local executed scripts
  executed=$(( ${counts_after% *} - ${counts_before% *} - 1 ))
  scripts=$(( ${counts_after#* } - ${counts_before#* } ))
  echo "$name $ROUND $(awk '/requests in/ { print $1 }' "$out") $(awk '/^Requests\/sec:/ { print $2 }' "$out")" \
    "$(awk '$1 == "50%" { print $2 }' "$out") $(awk '$1 == "99%" { print $2 }' "$out")" \
    "$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$out" | grep . || echo 0)" \
    "$((cpu_after - cpu_before)) $((redis_after - redis_before)) $((trips_after - trips_before)) $scripts $executed" >>"$REDIS_ROWS"
}

echo "Redis mode vs health vs file mode: $ROUNDS rounds of ${DURATION}s per scenario, $CONNECTIONS connections..." >&2
for ROUND in $(seq "$ROUNDS"); do
  redis_wrk redis-health redis /api/health
  redis_wrk redis-dashboard-key redis /api/me "x-api-key: ${BENCH_KEY[redis]}"
  redis_wrk redis-env-key redis /api/me "x-api-key: $ENV_KEY"
  redis_wrk files-health files /api/health
  redis_wrk files-dashboard-key files /api/me "x-api-key: ${BENCH_KEY[files]}"
done
COMMANDS=$(redis-cli -s "$REDIS_DIR/redis.sock" INFO commandstats | grep '^cmdstat_' | cut -d, -f1 | tr '\r\n' '  ')

python3 - "$REDIS_ROWS" "$TICKS_PER_SECOND" "$DURATION" "$CONNECTIONS" "$COMMANDS" <<'PY'
import os, platform, statistics, sys

rows_file, ticks, duration, conns, commands = sys.argv[1:]
ticks = int(ticks)

def ms(text):
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)

runs = {}
for line in open(rows_file):
    name, round_, requests, rps, p50, p99, non2xx, cpu, redis_cpu, trips, scripts, executed = line.split()
    requests = max(int(requests), 1)
    runs.setdefault(name, {})[int(round_)] = dict(
        rps=float(rps), p50=ms(p50), p99=ms(p99), non2xx=int(non2xx),
        cpu=int(cpu) * 1e6 / ticks / requests, redis_cpu=int(redis_cpu) * 1e6 / ticks / requests,
        trips=int(trips) / requests, scripts=int(scripts) / requests, executed=int(executed) / requests)

def median(name, field):
    return statistics.median(r[field] for r in runs[name].values())

def paired(name, baseline):
    return statistics.median(runs[name][k]["rps"] / runs[baseline][k]["rps"] for k in runs[name])

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"Portico on Redis vs on files: {os.cpu_count()} cores ({cpu}), wrk {duration}s x {conns} connections, loopback,")
print(f"one local redis-server on a unix socket (appendonly, fsync every second); median of {len(runs['redis-health'])}"
      " interleaved rounds")
print()
labels = {
    "redis-health": ("Redis", "GET /api/health (baseline)", "redis-health"),
    "redis-dashboard-key": ("Redis", "GET /api/me, dashboard key", "redis-health"),
    "redis-env-key": ("Redis", "GET /api/me, VALID_API_KEYS key", "redis-health"),
    "files-health": ("files", "GET /api/health (baseline)", "files-health"),
    "files-dashboard-key": ("files", "GET /api/me, dashboard key", "files-health"),
}
print("| store | scenario | req/s | vs health | p50 ms | p99 ms | Portico CPU us/req | Redis CPU us/req"
      " | round trips/req | scripts/req | commands run/req | non-2xx |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, (store, label, base) in labels.items():
    redis = lambda field, digits: f"{median(name, field):.{digits}f}" if store == "Redis" else "-"
    non2xx = sum(r["non2xx"] for r in runs[name].values())
    print(f"| {store} | {label} | {median(name, 'rps'):,.0f} | {paired(name, base):.2f} | {median(name, 'p50'):.2f} |"
          f" {median(name, 'p99'):.2f} | {median(name, 'cpu'):.2f} | {redis('redis_cpu', 2)} | {redis('trips', 3)} |"
          f" {redis('scripts', 3)} | {redis('executed', 2)} | {non2xx} |")
print()
print("round trips: Portico's portico_redis_round_trips_total (commands and scripts it sent) per request;")
print("scripts: EVALSHA/EVAL calls Redis counted; commands run: every command Redis executed, those inside scripts too")
print()
print(f"Redis commands seen over the whole run: {commands}")
print()
dash = paired("redis-dashboard-key", "redis-health")
trips = {name: median(name, "trips") for name in ("redis-dashboard-key", "redis-env-key")}
vs_files = paired("redis-dashboard-key", "files-dashboard-key")
targets = [
    ("dashboard key through Redis >= 0.5 x health (same instance)", dash >= 0.5, f"{dash:.2f}"),
    ("Redis round trips per API-key request = 1 (dashboard key, env key)",
     all(0.95 <= t <= 1.05 for t in trips.values()),
     " / ".join(f"{t:.3f}" for t in trips.values()) + " (idle workers' and housekeeping's included)"),
    ("dashboard key, Redis mode vs file mode (no target)", True, f"{vs_files:.2f}"),
]
non2xx = sum(r["non2xx"] for runs_ in runs.values() for r in runs_.values())
targets.append(("no non-2xx answer", non2xx == 0, str(non2xx)))
for label, met, value in targets:
    print(f"{'MET    ' if met else 'NOT MET'}  {label:<68} {value}")
sys.exit(0 if all(met for _, met, _ in targets) else 3)
PY
