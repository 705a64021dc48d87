# The gate's cost in instructions (issue 18, goal 1), sourced by bench.sh
# (`bash scripts/bench.sh callgrind`): counts that do not depend on the
# machine's load, where CPU time per request on a shared machine moves by
# a tenth between runs.
#
# The release server runs under `valgrind --tool=callgrind` with
# RUST_LOG=info, as deployed. For each scenario one client sends
# CALLGRIND_WARMUP requests on one keep-alive connection, the counters are
# zeroed (`callgrind_control -z`), it sends CALLGRIND_REQUESTS more, and the
# counters are dumped (`callgrind_control -d`): instructions of every server
# thread (workers, the log writer, the timers) divided by the requests.
# Target: an authenticated request within +1,500 instructions of
# `/api/health` on the same server.
#
#   CALLGRIND_REQUESTS=2000 CALLGRIND_WARMUP=300 bash scripts/bench.sh callgrind
#   CALLGRIND_KEEP=dir bash scripts/bench.sh callgrind   # keep the dumps for callgrind_annotate

CALLGRIND_REQUESTS=${CALLGRIND_REQUESTS:-2000}
CALLGRIND_WARMUP=${CALLGRIND_WARMUP:-300}
CALLGRIND_BOUND=${CALLGRIND_BOUND:-1500}
CALLGRIND_MET=0

# keep_alive_requests PATH COUNT [HEADER]: COUNT GETs on one connection;
# prints how many were answered 200.
keep_alive_requests() {
  python3 - "$PORT" "$1" "$2" "${3:-}" <<'PY'
import http.client, sys
port, path, count, header = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = dict([header.split(": ", 1)]) if header else {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
ok = 0
for _ in range(count):
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    ok += response.status == 200
print(ok)
PY
}

# callgrind_scenario NAME PATH [HEADER]: appends "NAME instructions ok" to $CG_ROWS.
callgrind_scenario() {
  local name=$1 path=$2 header=${3:-} ok dump
  keep_alive_requests "$path" "$CALLGRIND_WARMUP" "$header" >/dev/null
  callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
  ok=$(keep_alive_requests "$path" "$CALLGRIND_REQUESTS" "$header")
  callgrind_control --dump="$name" "$SERVER_PID" >/dev/null 2>&1
  # The newest dump is this scenario's; its "totals:" line sums every thread.
  dump=$(ls -t "$WORK"/callgrind.out.* | head -n 1)
  echo "$name $(awk '/^(totals|summary):/ { print $2; exit }' "$dump") $ok" >>"$CG_ROWS"
  [ -n "${CALLGRIND_KEEP:-}" ] && cp "$dump" "$CALLGRIND_KEEP/callgrind.$name"
  return 0
}

callgrind_bench() {
  command -v valgrind >/dev/null || { echo "the callgrind section needs valgrind" >&2; exit 1; }
  [ -n "${CALLGRIND_KEEP:-}" ] && mkdir -p "$CALLGRIND_KEEP"
  CG_ROWS="$WORK/callgrind-rows"
  echo "making a dashboard key on a native server..." >&2
  start_server
  setup_owner
  DASH_KEY=$(generate_key bench)
  [ -n "$DASH_KEY" ] || { echo "could not generate a dashboard key" >&2; exit 1; }
  stop_server

  WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-line=no)
  STARTUP_TRIES=1200 # valgrind starts slowly
  echo "under callgrind: $CALLGRIND_REQUESTS requests per scenario after $CALLGRIND_WARMUP of warm-up..." >&2
  start_server
  callgrind_scenario health /api/health
  callgrind_scenario env-key /api/me "x-api-key: $ENV_KEY"
  callgrind_scenario dashboard-key-1 /api/me "x-api-key: $DASH_KEY"
  stop_server
  python3 scripts/add_synthetic_keys.py "$DATA/api-keys.json" 10000 >/dev/null
  start_server
  callgrind_scenario health-10000 /api/health
  callgrind_scenario dashboard-key-10000 /api/me "x-api-key: $DASH_KEY"
  stop_server
  WRAPPER=()
  STARTUP_TRIES=100

  CALLGRIND_MET=$(python3 - "$CG_ROWS" "$CALLGRIND_REQUESTS" "$CALLGRIND_BOUND" <<'PY'
import sys
rows_file, requests, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for line in open(rows_file):
    name, instructions, ok = line.split()
    rows[name] = (int(instructions) / requests, int(ok))
labels = [
    ("health", "GET /api/health (no auth, baseline)", "health"),
    ("env-key", "GET /api/me, VALID_API_KEYS key", "health"),
    ("dashboard-key-1", "GET /api/me, dashboard key, 1 stored", "health"),
    ("health-10000", "GET /api/health, 10k keys stored", "health-10000"),
    ("dashboard-key-10000", "GET /api/me, dashboard key, 10k stored", "health-10000"),
]
out = sys.stderr
print(f"instructions per request under callgrind ({requests} requests per scenario, one keep-alive connection,"
      " RUST_LOG=info, every server thread counted)", file=out)
print(f"| {'scenario':<38} | {'instructions/req':>16} | {'vs health':>9} | {'200s':>6} |", file=out)
print(f"|{'-'*40}|{'-'*18}|{'-'*11}|{'-'*8}|", file=out)
met = True
for name, label, base in labels:
    per, ok = rows[name]
    diff = per - rows[base][0]
    print(f"| {label:<38} | {per:>16,.0f} | {diff:>+9,.0f} | {ok:>6} |", file=out)
    met &= ok == requests
print(file=out)
for name, label, base in labels:
    if name == base:
        continue
    diff = rows[name][0] - rows[base][0]
    ok = diff <= bound and rows[name][1] == requests
    met &= ok
    print(f"{'MET    ' if ok else 'NOT MET'}  {label}: within +{bound:,} instructions of health  {diff:+,.0f}", file=out)
print(int(met))
PY
)
}
