"""What the peer programs share: their command line, the workloads' shape and the prompts, so
each does the same work as the `super` orchestras of bench/gen_orchestras.py.

    python3 bench/peers/<framework>_bench.py chain N  --base-url URL --out DIR [--goal bench]
    python3 bench/peers/<framework>_bench.py fan N    --base-url URL --out DIR [--max-parallel 20]

chain N: tasks s000 .. s<N-1>, each with the previous task's output as its context (seq_N).
fan N:   tasks w000 .. w<N-1> with no context, then `aggregate` whose context is all of them (fan_N).
Each task makes one LLM call (model `bench`, api key `bench-key`, OpenAI protocol at URL) and
writes its output to DIR/task_outputs/<task>_output.txt. The last line on stdout is one JSON
object: {"framework", "version", "workload", "tasks", "calls", "import_s", "run_s"}.
"""

import argparse
import json
import os
import sys
import time

# What the agent of the benchmark project says about itself (its playbook's persona).
ROLE = "Benchmark worker"
GOAL_OF_AGENT = "Answer in one line"
BACKSTORY = "A stand-in agent whose replies come from a stub server."
EXPECTED = "One line."
MODEL = "bench"
API_KEY = "bench-key"

# No peer phones home: the benchmark's network is the loopback stub alone.
QUIET_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "OTEL_SDK_DISABLED": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING_V2": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def setup_env():
    """Set the variables above (before the framework is imported)."""
    for k, v in QUIET_ENV.items():
        os.environ[k] = v


def args(framework):
    ap = argparse.ArgumentParser(description=f"{framework} side of `scripts/bench.sh peers`")
    ap.add_argument("workload", choices=("chain", "fan"))
    ap.add_argument("tasks", type=int)
    ap.add_argument("--base-url", required=True, help="the stub's root, e.g. http://127.0.0.1:PORT")
    ap.add_argument("--out", required=True, help="folder for task_outputs/")
    ap.add_argument("--goal", default="bench")
    ap.add_argument("--max-parallel", type=int, default=20)
    a = ap.parse_args()
    if a.tasks < 1:
        ap.error("tasks must be >= 1")
    a.base_url = a.base_url.rstrip("/") + "/v1"
    return a


def names(a):
    """The task names, in order, as in the super orchestras."""
    if a.workload == "chain":
        return [f"s{i:03d}" for i in range(a.tasks)]
    return [f"w{i:03d}" for i in range(a.tasks)] + ["aggregate"]


def description(a, i):
    """The task description, with {goal} placeholders as written in the orchestra."""
    if a.workload == "chain":
        return f"Step {i} of '{{goal}}'."
    if i < a.tasks:
        return f"Part {i} of '{{goal}}'."
    return "Merge the parts of '{goal}'."


def output_path(a, name):
    return os.path.join(a.out, "task_outputs", f"{name}_output.txt")


def write_output(a, name, text):
    path = output_path(a, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def check_outputs(a):
    """Every task wrote its output file."""
    missing = [n for n in names(a) if not os.path.isfile(output_path(a, n))]
    if missing:
        raise SystemExit(f"missing outputs: {missing[:5]} ({len(missing)} in all)")


def report(framework, version, a, calls, import_s, run_s):
    print(json.dumps({"framework": framework, "version": version, "workload": a.workload,
                      "tasks": len(names(a)), "calls": calls, "import_s": round(import_s, 4),
                      "run_s": round(run_s, 4)}))
    sys.stdout.flush()


def clock():
    return time.perf_counter()
