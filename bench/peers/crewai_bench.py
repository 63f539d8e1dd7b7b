#!/usr/bin/env python3
"""CrewAI side of `scripts/bench.sh peers` (see common.py for the command line).

One Agent (the benchmark agent's role, goal and backstory, an LLM of CrewAI's pointed at the
stub), one Task per task with `output_file` (CrewAI writes it) and `context`, the goal filled in
by `kickoff(inputs={"goal": ...})`. chain: Process.sequential, each task with the previous one as
context. fan: the N workers with `async_execution=True` (each on its own thread, as CrewAI runs
them), then `aggregate` with all of them as context. CrewAI refuses to run one agent's executor
on two tasks at once ("Executor is already running"), so each task of the fan-out gets its own
Agent (same role, goal, backstory and LLM), as a CrewAI user has to write it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.setup_env()
T0 = common.clock()
from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402

IMPORT_S = common.clock() - T0


def main():
    a = common.args("CrewAI")
    # CrewAI resolves output_file against the working directory.
    os.makedirs(a.out, exist_ok=True)
    os.chdir(a.out)
    a.out = "."
    llm = LLM(model=f"openai/{common.MODEL}", base_url=a.base_url, api_key=common.API_KEY,
              temperature=0.0)

    def new_agent():
        return Agent(role=common.ROLE, goal=common.GOAL_OF_AGENT, backstory=common.BACKSTORY, llm=llm,
                     verbose=False, allow_delegation=False)

    agent = new_agent()
    names = common.names(a)
    tasks = []
    for i, name in enumerate(names):
        if a.workload == "chain":
            context = tasks[-1:]
            asynchronous = False
        else:
            context = tasks[:] if name == "aggregate" else []
            asynchronous = name != "aggregate"
        tasks.append(Task(description=common.description(a, i), expected_output=common.EXPECTED,
                          agent=agent if a.workload == "chain" else new_agent(), context=context,
                          async_execution=asynchronous, output_file=os.path.join("task_outputs", f"{name}_output.txt")))
    agents = [agent] if a.workload == "chain" else [t.agent for t in tasks]
    crew = Crew(agents=agents, tasks=tasks, process=Process.sequential, verbose=False,
                max_rpm=None)
    t = common.clock()
    crew.kickoff(inputs={"goal": a.goal})
    run_s = common.clock() - t
    common.check_outputs(a)
    # No self-count: crew.usage_metrics.successful_requests adds up each agent's running totals
    # (441 for the 21 agents of the fan-out); the harness counts the stub's requests instead.
    from importlib.metadata import version
    common.report("crewai", version("crewai"), a, None, IMPORT_S, run_s)


if __name__ == "__main__":
    main()
