#!/usr/bin/env python3
"""The llama.cpp side of the embedded-model benchmark (run with a python that has llama_cpp).

    python bench/llama_cpp_bench.py MODEL PROMPT_TOKENS GEN_TOKENS THREADS

One load, one greedy generation of exactly GEN_TOKENS tokens (end tokens ignored) after a
prompt of exactly PROMPT_TOKENS tokens (ChatML-wrapped filler text, cut to length), on
THREADS threads for both prompt processing and decoding. Prints one JSON object with the same
keys as crates/super-local/examples/bench.rs, measured the same way:

  prompt_ms                the prompt's forward passes (llama_decode in n_batch chunks)
  time_to_first_token_ms   from before tokenizing the prompt text to the first token sampled
  generation_ms            from the first token to the last: GEN_TOKENS - 1 decode steps
  generation_tokens_per_s  (GEN_TOKENS - 1) / generation_ms
  peak_rss_kb              VmHWM of this process (python and numpy included; see
                           rss_after_import_kb for the interpreter's share before the model)
"""

import ctypes
import json
import sys
import time

FILLER = ("The quick brown fox jumps over the lazy dog while the river runs past old stone "
          "bridges, and the wind carries stories from distant hills to the town. ")


def vmhwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    path, n_prompt, n_gen, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    import llama_cpp
    import numpy as np

    # llama.cpp's AMX extra buffer type (compiled in by a -march=native build on a CPU that
    # advertises AMX-INT8, as this VM does) crashes in ggml_backend_amx_mul_mat here. When the
    # library has AMX, turn the extra buffer types off (that also drops the CPU repack of the
    # one Q8_0 tensor, token_embd; Q4_1 has no repack). scripts/bench.sh builds llama.cpp
    # without AMX on such CPUs, so normally nothing is turned off. BENCH_LLAMA_EXTRA_BUFTS=1 / 0
    # forces the choice.
    import os
    system_info = llama_cpp.llama_print_system_info().decode(errors="replace")
    forced = os.environ.get("BENCH_LLAMA_EXTRA_BUFTS")
    extra_bufts = forced == "1" if forced in ("0", "1") else "AMX_INT8 = 1" not in system_info
    if not extra_bufts:
        import llama_cpp.llama_cpp as lib
        default_params = lib.llama_model_default_params

        def params_without_extra_bufts():
            p = default_params()
            p.use_extra_bufts = False
            return p

        lib.llama_model_default_params = params_without_extra_bufts

    rss_import = vmhwm_kb()
    n_ctx = ((n_prompt + n_gen + 16 + 255) // 256) * 256
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, logits_all=False, verbose=False)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_load = vmhwm_kb()
    n_vocab = llm.n_vocab()

    def argmax_last():
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return int(np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                         shape=(n_vocab,)).argmax())

    text = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "Continue this story at length: " + FILLER * (n_prompt // 8 + 4))
    start = time.perf_counter()
    tokens = llm.tokenize(text.encode(), add_bos=False, special=True)[:n_prompt]
    if len(tokens) < n_prompt:
        raise SystemExit(f"prompt too short: {len(tokens)} tokens")
    llm.reset()
    p0 = time.perf_counter()
    llm.eval(tokens)
    prompt_s = time.perf_counter() - p0
    tok = argmax_last()
    first = time.perf_counter()
    out = [tok]
    while len(out) < n_gen:
        llm.eval([tok])
        tok = argmax_last()
        out.append(tok)
    gen_s = time.perf_counter() - first

    r = lambda x: round(x, 1)  # noqa: E731
    print(json.dumps({
        "engine": "llama.cpp via llama-cpp-python " + llama_cpp.__version__,
        "extra_bufts": extra_bufts,
        "system_info": system_info.strip(),
        "model_path": path,
        "threads": threads,
        "load_ms": r(load_ms),
        "prompt_tokens": len(tokens),
        "prompt_ms": r(prompt_s * 1e3),
        "prompt_tokens_per_s": r(len(tokens) / prompt_s),
        "completion_tokens": len(out),
        "time_to_first_token_ms": r((first - start) * 1e3),
        "generation_ms": r(gen_s * 1e3),
        "generation_tokens_per_s": r((len(out) - 1) / gen_s) if gen_s > 0 else None,
        "rss_after_import_kb": rss_import,
        "peak_rss_after_load_kb": rss_load,
        "peak_rss_kb": vmhwm_kb(),
        "text": llm.detokenize(out).decode(errors="replace")[:200],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
