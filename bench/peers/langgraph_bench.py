#!/usr/bin/env python3
"""LangGraph side of `scripts/bench.sh peers` (see common.py for the command line).

One node per task in a StateGraph; each node calls langchain-openai's ChatOpenAI (pointed at
the stub) with the agent's persona as the system message and the task description, the goal
filled in, plus its context (the upstream outputs) as the user message, and writes its output
file. chain: START -> s000 -> s001 -> ... -> END. fan: START -> w000..w<N-1> (run in one
superstep, at most --max-parallel at once) -> aggregate -> END.
"""

import operator
import os
import sys
from typing import Annotated, TypedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.setup_env()
T0 = common.clock()
from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

IMPORT_S = common.clock() - T0


def merge(a, b):
    out = dict(a or {})
    out.update(b or {})
    return out


class State(TypedDict):
    goal: str
    outputs: Annotated[dict, merge]
    calls: Annotated[int, operator.add]


def main():
    a = common.args("LangGraph")
    llm = ChatOpenAI(model=common.MODEL, base_url=a.base_url, api_key=common.API_KEY, temperature=0.0)
    system = SystemMessage(f"You are {common.ROLE}. {common.GOAL_OF_AGENT}. {common.BACKSTORY}")
    names = common.names(a)

    def node(i, name, context):
        def run(state):
            text = common.description(a, i).format(goal=state["goal"])
            if context:
                text += "\n\nContext:\n" + "\n\n".join(f"[{c}]\n{state['outputs'][c]}" for c in context)
            reply = llm.invoke([system, HumanMessage(text)]).content
            common.write_output(a, name, reply)
            return {"outputs": {name: reply}, "calls": 1}
        return run

    g = StateGraph(State)
    if a.workload == "chain":
        for i, name in enumerate(names):
            g.add_node(name, node(i, name, [names[i - 1]] if i else []))
            g.add_edge(START if i == 0 else names[i - 1], name)
        g.add_edge(names[-1], END)
    else:
        workers = names[:-1]
        for i, name in enumerate(workers):
            g.add_node(name, node(i, name, []))
            g.add_edge(START, name)
        g.add_node("aggregate", node(len(workers), "aggregate", workers))
        g.add_edge(workers, "aggregate")
        g.add_edge("aggregate", END)
    graph = g.compile()
    t = common.clock()
    final = graph.invoke({"goal": a.goal, "outputs": {}, "calls": 0},
                         config={"recursion_limit": len(names) + 10, "max_concurrency": a.max_parallel})
    run_s = common.clock() - t
    common.check_outputs(a)
    from importlib.metadata import version
    common.report("langgraph", version("langgraph"), a, final["calls"], IMPORT_S, run_s)


if __name__ == "__main__":
    main()
