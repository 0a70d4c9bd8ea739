# Loquat shell client: source this file, then
#
#   loquat_start [daemon-path]            start loquatd as a coprocess and initialize it
#   loquat_call METHOD '{"k":"v"}'        print the result JSON; on an error response print the
#                                         error object to stderr and return 1 (2: daemon gone)
#   loquat_notify METHOD '{"k":"v"}'      send a notification
#   loquat_get JSON KEY                   print a top-level member (strings unquoted)
#   loquat_stop                           shutdown + exit; returns the daemon's exit status
#
# The daemon is found as: the argument, $LOQUATD, or `loquatd` on PATH. Its stderr goes to
# $LOQUAT_LOG when set. LOQUAT_VERBOSE=1 asks for progress and prints `$/progress` values
# to stderr. jq is used when present; everything also works without it.
#
# loquat_call may run in `$(...)`: request ids come from a counter file, and each call reads
# until it sees the response carrying its own id, skipping notifications and stale replies.
# Start and stop the daemon from the main shell, though, and make calls one at a time.

_loquat_have_jq() { [[ -z ${LOQUAT_NO_JQ:-} ]] && command -v jq >/dev/null 2>&1; }

# Prints the raw text of top-level member KEY of the JSON object $1; returns 1 if absent.
# A small tokenizer (strings, structural characters, runs of anything else) that tracks depth.
_loquat_member() {
    local LC_ALL=C
    local json=$1 key=\"$2\" i=0 depth=0 start=-1 tok previous=""
    local re='^("([^"\\]|\\.)*"|[^]["{}:,]+|.)'
    while ((i < ${#json})); do
        [[ ${json:i} =~ $re ]] || return 1
        tok=${BASH_REMATCH[1]}
        case $tok in
            '{' | '[') ((depth++)) ;;
            '}' | ']' | ',')
                local level=1
                [[ $tok == , ]] || { ((depth--)); level=0; }
                if ((start >= 0 && depth == level)); then
                    local value=${json:start:i-start}
                    value=${value#"${value%%[![:space:]]*}"}
                    printf '%s\n' "${value%"${value##*[![:space:]]}"}"
                    return 0
                fi
                ;;
            :) ((depth == 1 && start < 0)) && [[ $previous == "$key" ]] && start=$((i + 1)) ;;
        esac
        [[ $tok == *[![:space:]]* ]] && previous=$tok
        ((i += ${#tok}))
    done
    return 1
}

# loquat_get JSON KEY: the member's JSON text, or for a string its contents (like jq -r).
loquat_get() {
    local value
    if _loquat_have_jq; then
        value=$(jq -ec --arg k "$2" 'if has($k) then .[$k] else error end' <<<"$1" 2>/dev/null) || return 1
    else
        value=$(_loquat_member "$1" "$2") || return 1
    fi
    if [[ $value == \"*\" ]]; then
        value=${value:1:${#value}-2}
        value=${value//\\\\/$'\x01'}
        value=${value//\\\"/\"}
        value=${value//\\\//\/}
        value=${value//$'\x01'/\\}
    fi
    printf '%s\n' "$value"
}

_loquat_send() {
    [[ -n ${_LOQUAT_TO:-} ]] || { echo "loquat: daemon not started (run loquat_start)" >&2; return 2; }
    # A subshell ignoring SIGPIPE: writing to a dead daemon is an error here, not a killed shell.
    (trap '' PIPE; printf '%s\n' "$1" >&"$_LOQUAT_TO") 2>/dev/null ||
        { echo "loquat: cannot write to loquatd (pid ${_LOQUAT_PID:-?}); has it exited?" >&2; return 2; }
}

_loquat_next_id() {
    local id
    [[ -n ${_LOQUAT_DIR:-} ]] && id=$(<"$_LOQUAT_DIR/id") || return 2
    echo $((id + 1)) >"$_LOQUAT_DIR/id"
    echo "$id"
}

loquat_notify() {
    _loquat_send "{\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":${2:-{\}}}"
}

loquat_call() {
    local method=$1 params=${2:-'{}'} id line body
    id=$(_loquat_next_id) || { echo "loquat: daemon not started (run loquat_start)" >&2; return 2; }
    if [[ ${LOQUAT_VERBOSE:-} == 1 && $method != shutdown && $params == \{* && $params != *'"workDoneToken"'* ]]; then
        [[ $params =~ ^\{[[:space:]]*\}$ ]] && params="{\"workDoneToken\":\"sh-$id\"}" ||
            params="{\"workDoneToken\":\"sh-$id\",${params#\{}"
    fi
    _loquat_send "{\"jsonrpc\":\"2.0\",\"id\":$id,\"method\":\"$method\",\"params\":$params}" || return
    while IFS= read -r line <&"$_LOQUAT_FROM"; do
        # The daemon writes {"jsonrpc":"2.0","id":N,"result"|"error":…}; other layouts fall back
        # to the tokenizer.
        if [[ $line == '{"jsonrpc":"2.0","id":'"$id"',"result":'*'}' ]]; then
            body=${line#*\"result\":}
            printf '%s\n' "${body%\}}"
            return 0
        elif [[ $line == '{"jsonrpc":"2.0","id":'"$id"',"error":'*'}' ]]; then
            body=${line#*\"error\":}
            printf '%s\n' "${body%\}}" >&2
            return 1
        elif [[ $line == *'"method":"$/progress"'* ]]; then
            [[ ${LOQUAT_VERBOSE:-} == 1 ]] && printf 'loquat progress: %s\n' "$(loquat_get "$line" params)" >&2
        elif [[ $line == *'"id":'"$id"[,}]* && $(_loquat_member "$line" id) == "$id" ]]; then
            if body=$(_loquat_member "$line" result); then
                printf '%s\n' "$body"
                return 0
            fi
            _loquat_member "$line" error >&2
            return 1
        elif [[ ${LOQUAT_VERBOSE:-} == 1 ]]; then
            printf 'loquat: skipped %s\n' "$line" >&2
        fi
    done
    echo "loquat: loquatd closed its output while $method (id $id) was pending" >&2
    return 2
}

loquat_start() {
    if [[ -n ${_LOQUAT_PID:-} ]] && kill -0 "$_LOQUAT_PID" 2>/dev/null; then
        echo "loquat: already running (pid $_LOQUAT_PID)" >&2
        return 1
    fi
    local daemon=${1:-${LOQUATD:-}}
    [[ -n $daemon ]] || daemon=$(command -v loquatd) ||
        { echo "loquat: loquatd not found (pass a path, set LOQUATD, or put it on PATH)" >&2; return 2; }
    [[ -x $daemon ]] || { echo "loquat: $daemon is not executable" >&2; return 2; }
    if [[ -n ${LOQUAT_LOG:-} ]]; then
        coproc LOQUAT_COPROC { exec "$daemon" 2>>"$LOQUAT_LOG"; }
    else
        coproc LOQUAT_COPROC { exec "$daemon"; }
    fi
    _LOQUAT_PID=$LOQUAT_COPROC_PID
    # Own copies of the pipes: bash closes the coproc's when it reaps the process.
    exec {_LOQUAT_FROM}<&"${LOQUAT_COPROC[0]}" {_LOQUAT_TO}>&"${LOQUAT_COPROC[1]}"
    eval "exec ${LOQUAT_COPROC[0]}<&- ${LOQUAT_COPROC[1]}>&-"
    _LOQUAT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/loquat-sh.XXXXXX") && echo 1 >"$_LOQUAT_DIR/id" || return 2
    # processId: the daemon exits by itself if this shell dies.
    LOQUAT_SERVER_INFO=$(loquat_call initialize "{\"processId\":$$,\"clientInfo\":{\"name\":\"loquat.sh\"}}") || {
        loquat_stop >/dev/null 2>&1
        return 2
    }
}

loquat_stop() {
    [[ -n ${_LOQUAT_PID:-} ]] || { echo "loquat: not running" >&2; return 1; }
    local pid=$_LOQUAT_PID status tries=0
    loquat_call shutdown >/dev/null
    loquat_notify exit 2>/dev/null
    exec {_LOQUAT_TO}>&- {_LOQUAT_FROM}<&-
    while kill -0 "$pid" 2>/dev/null && ((tries++ < ${LOQUAT_STOP_TIMEOUT:-10} * 10)); do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "loquat: loquatd did not exit; killing it" >&2; kill -9 "$pid"; }
    wait "$pid" 2>/dev/null
    status=$?
    rm -rf "$_LOQUAT_DIR"
    unset _LOQUAT_PID _LOQUAT_TO _LOQUAT_FROM _LOQUAT_DIR
    return "$status"
}
