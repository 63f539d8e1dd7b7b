//! The plan: the task graph built from `context` and `dependencies`, checked for unknown names
//! and cycles, split into phases (one for sequential and parallel, one per task group for
//! mixed), with the order a run takes when every task succeeds. The scheduler that runs it
//! lives in `exec/scheduler.rs`; the plan never builds one.

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::spec::{OrchestraSpec, Priority, Strategy, TaskRef};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Phase {
    /// The task group's name under `mixed`.
    pub name: Option<String>,
    pub strategy: Strategy,
    pub concurrency: usize,
    pub tasks: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub strategy: Strategy,
    /// Every task's prerequisites (context and dependencies), each once, in file order.
    pub deps: Vec<Vec<usize>>,
    /// The tasks whose output goes into each task's prompt, in plan order.
    pub context: Vec<Vec<usize>>,
    pub dependents: Vec<Vec<usize>>,
    pub phases: Vec<Phase>,
    pub phase_of: Vec<usize>,
    pub priority: Vec<Priority>,
    /// Start order when every task succeeds, and each task's place in it.
    pub order: Vec<usize>,
    pub position: Vec<usize>,
    /// Groups of tasks that start together when every task takes the same time.
    pub waves: Vec<Vec<usize>>,
}

/// Overrides from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    pub strategy: Option<Strategy>,
    pub max_parallel: Option<usize>,
}

impl Plan {
    pub fn build(
        spec: &OrchestraSpec,
        options: PlanOptions,
        diags: &mut Diagnostics,
    ) -> Option<Plan> {
        let file = &spec.file;
        let n = spec.tasks.len();
        let index: HashMap<&str, usize> = spec
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let names: Vec<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
        let errors_before = diags.error_count();

        let resolve = |reference: &TaskRef,
                       owner: &str,
                       field: &str,
                       diags: &mut Diagnostics|
         -> Option<usize> {
            if let Some(&i) = index.get(reference.name.as_str()) {
                return Some(i);
            }
            if spec.rejected_task_names.contains(&reference.name) {
                return None;
            }
            let hint = match did_you_mean(&reference.name, names.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None if names.is_empty() => "the orchestra has no valid tasks".to_string(),
                None => format!("tasks are: {}", names.join(", ")),
            };
            diags.push(
                Diagnostic::error(format!(
                    "task `{owner}` has `{field}` naming unknown task `{}`",
                    reference.name
                ))
                .at(file, reference.loc, "no task has this name")
                .hint(hint),
            );
            None
        };

        let mut deps = vec![Vec::new(); n];
        let mut context = vec![Vec::new(); n];
        // For each edge, where it was written, so a cycle can point at it.
        let mut edge_loc: HashMap<(usize, usize), crate::source::Loc> = HashMap::new();
        for (i, task) in spec.tasks.iter().enumerate() {
            for reference in &task.context {
                if reference.name == task.name.as_str() {
                    diags.push(self_reference(spec, task, reference, "context"));
                    continue;
                }
                if let Some(j) = resolve(reference, task.name.as_str(), "context", diags) {
                    if !context[i].contains(&j) {
                        context[i].push(j);
                    }
                    if !deps[i].contains(&j) {
                        deps[i].push(j);
                    }
                    edge_loc.entry((i, j)).or_insert(reference.loc);
                }
            }
            for dependency in &task.dependencies {
                if dependency.task.name == task.name.as_str() {
                    diags.push(self_reference(spec, task, &dependency.task, "dependencies"));
                    continue;
                }
                if let Some(j) =
                    resolve(&dependency.task, task.name.as_str(), "dependencies", diags)
                {
                    if !deps[i].contains(&j) {
                        deps[i].push(j);
                    }
                    // `dependency_type: requires_output` hands the output over, as `context` does.
                    if dependency.passes_output() && !context[i].contains(&j) {
                        context[i].push(j);
                    }
                    edge_loc.entry((i, j)).or_insert(dependency.task.loc);
                }
            }
        }
        // `{task}` and `{task.field}` in a description: the task must finish first. A `{word}`
        // that names no task and looks like no task name is left as text; an input is
        // filled from its value.
        for (i, task) in spec.tasks.iter().enumerate() {
            for reference in crate::structured::references(&task.description) {
                // An input's value, not a task's output (`inputs` checks those).
                if spec.is_input(&reference.task) {
                    continue;
                }
                match index.get(reference.task.as_str()) {
                    Some(&j) if j == i => diags.push(
                        Diagnostic::error(format!(
                            "task `{}` refers to its own output with `{}`",
                            task.name,
                            reference.written()
                        ))
                        .at(
                            file,
                            crate::structured::resolve::reference_loc(
                                spec,
                                task,
                                &reference.written(),
                            ),
                            "its own name",
                        )
                        .hint("a task can use the outputs of the tasks before it, not its own"),
                    ),
                    Some(&j) => {
                        if !deps[i].contains(&j) {
                            deps[i].push(j);
                        }
                        edge_loc.entry((i, j)).or_insert(task.description_loc);
                    }
                    None => {
                        let close = did_you_mean(&reference.task, names.iter().copied());
                        if reference.path.is_empty() && close.is_none() {
                            continue;
                        }
                        if spec.rejected_task_names.contains(&reference.task) {
                            continue;
                        }
                        let hint = match close {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => format!("tasks are: {}", names.join(", ")),
                        };
                        diags.push(
                            Diagnostic::error(format!(
                                "task `{}` uses `{}` in its description, but no task is named `{}`",
                                task.name,
                                reference.written(),
                                reference.task
                            ))
                            .at(
                                file,
                                crate::structured::resolve::reference_loc(
                                    spec,
                                    task,
                                    &reference.written(),
                                ),
                                "no task has this name",
                            )
                            .hint(hint),
                        );
                    }
                }
            }
        }
        let mut dependents = vec![Vec::new(); n];
        for (i, list) in deps.iter().enumerate() {
            for &j in list {
                dependents[j].push(i);
            }
        }

        // Cycles: Kahn's algorithm, then walk what is left to name each cycle.
        let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut resolved = vec![false; n];
        while let Some(i) = queue.pop() {
            resolved[i] = true;
            for &k in &dependents[i] {
                indegree[k] -= 1;
                if indegree[k] == 0 {
                    queue.push(k);
                }
            }
        }
        let mut visited = vec![false; n];
        for start in 0..n {
            if resolved[start] || visited[start] {
                continue;
            }
            let mut path: Vec<usize> = Vec::new();
            let mut on_path = HashMap::new();
            let mut node = start;
            loop {
                if let Some(&at) = on_path.get(&node) {
                    let cycle: Vec<usize> = path[at..].to_vec();
                    let mut chain: Vec<&str> = cycle.iter().map(|&i| names[i]).collect();
                    chain.push(names[cycle[0]]);
                    let first = cycle[0];
                    let next = *cycle.get(1).unwrap_or(&cycle[0]);
                    let loc = edge_loc
                        .get(&(first, next))
                        .copied()
                        .unwrap_or(spec.tasks[first].name_loc);
                    diags.push(
                        Diagnostic::error(format!("dependency cycle: {}", chain.join(" -> ")))
                            .at(file, loc, format!("`{}` waits for `{}`", names[first], names[next]))
                            .hint(format!(
                                "tasks {} wait for each other; remove one of these `context`/`dependencies` entries",
                                cycle.iter().map(|&i| format!("`{}`", names[i])).collect::<Vec<_>>().join(", ")
                            )),
                    );
                    break;
                }
                if visited[node] {
                    break;
                }
                visited[node] = true;
                on_path.insert(node, path.len());
                path.push(node);
                match deps[node].iter().copied().find(|&j| !resolved[j]) {
                    Some(j) => node = j,
                    None => break,
                }
            }
            for &p in &path {
                visited[p] = true;
            }
        }

        let strategy = options.strategy.unwrap_or(spec.execution.strategy);
        if strategy == Strategy::Sequential
            && options.max_parallel.is_none()
            && spec.execution.max_parallel_tasks > 1
        {
            if let Some(loc) = spec.execution.max_parallel_loc {
                diags.push(
                    Diagnostic::warning(format!(
                        "`max_parallel_tasks: {}` has no effect under `strategy: sequential`",
                        spec.execution.max_parallel_tasks
                    ))
                    .at(file, loc, "sequential runs one task at a time")
                    .hint("use `strategy: parallel` (or `mixed`) to run tasks at once, or set `max_parallel_tasks: 1`"),
                );
            }
        }
        let max_parallel = options
            .max_parallel
            .unwrap_or(spec.execution.max_parallel_tasks)
            .max(1);
        let (phases, phase_of) = build_phases(spec, strategy, max_parallel, &index, &deps, diags);

        if diags.error_count() > errors_before {
            return None;
        }
        let priority: Vec<Priority> = spec.tasks.iter().map(|t| t.priority).collect();
        let mut plan = Plan {
            strategy,
            deps,
            context,
            dependents,
            phases,
            phase_of,
            priority,
            order: Vec::new(),
            position: vec![0; n],
            waves: Vec::new(),
        };
        plan.simulate();
        // Context is shown in plan order, whatever order it was written in.
        let position = plan.position.clone();
        for list in &mut plan.context {
            list.sort_by_key(|&j| position[j]);
        }
        Some(plan)
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// The order a run takes when every task succeeds and takes the same time: waves of tasks
    /// that start together, each taken by priority then file order, within a phase's
    /// concurrency, phase after phase. (`exec::scheduler` runs the same rules live; a test there
    /// checks that both agree.)
    fn simulate(&mut self) {
        let n = self.len();
        let mut waiting_on: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut done = vec![false; n];
        let mut waves = Vec::new();
        // The phase's ready tasks, best first (priority, then file order): a heap kept as
        // tasks finish, so a wave costs its own tasks and their dependents, not a scan of the
        // phase (which made 100,000 tasks in waves of 8 quadratic).
        let key = |t: usize| std::cmp::Reverse((std::cmp::Reverse(self.priority[t]), t));
        for (p, phase) in self.phases.iter().enumerate() {
            let mut ready: std::collections::BinaryHeap<_> = phase
                .tasks
                .iter()
                .copied()
                .filter(|&t| !done[t] && waiting_on[t] == 0 && self.phase_of[t] == p)
                .map(key)
                .collect();
            while !ready.is_empty() {
                let take = phase.concurrency.max(1).min(ready.len());
                let wave: Vec<usize> = (0..take)
                    .filter_map(|_| ready.pop())
                    .map(|std::cmp::Reverse((_, t))| t)
                    .collect();
                for &t in &wave {
                    done[t] = true;
                }
                // Tasks ready now start in the next wave, not this one.
                for &t in &wave {
                    for &k in &self.dependents[t] {
                        waiting_on[k] -= 1;
                        if waiting_on[k] == 0 && !done[k] && self.phase_of[k] == p {
                            ready.push(key(k));
                        }
                    }
                }
                waves.push(wave);
            }
        }
        self.order = waves.iter().flatten().copied().collect();
        for (place, &task) in self.order.iter().enumerate() {
            self.position[task] = place;
        }
        self.waves = waves;
    }

    /// `task` and everything downstream of it.
    pub fn downstream(&self, task: usize) -> Vec<bool> {
        let mut marked = vec![false; self.len()];
        let mut stack = vec![task];
        while let Some(i) = stack.pop() {
            if !marked[i] {
                marked[i] = true;
                stack.extend(self.dependents[i].iter().copied());
            }
        }
        marked
    }
}

/// A task naming itself in `context` or `dependencies`: its own mistake, not a cycle.
fn self_reference(
    spec: &OrchestraSpec,
    task: &crate::spec::TaskSpec,
    reference: &TaskRef,
    field: &str,
) -> Diagnostic {
    Diagnostic::error(format!("task `{}` lists itself in {field}", task.name))
        .at(
            &spec.file,
            reference.loc,
            "a task cannot wait for its own output",
        )
        .hint(format!(
            "remove `{}` from its `{field}`; list the tasks whose output it builds on",
            task.name
        ))
}

fn build_phases(
    spec: &OrchestraSpec,
    strategy: Strategy,
    max_parallel: usize,
    index: &HashMap<&str, usize>,
    deps: &[Vec<usize>],
    diags: &mut Diagnostics,
) -> (Vec<Phase>, Vec<usize>) {
    let n = spec.tasks.len();
    let file = &spec.file;
    let all = |strategy, concurrency| Phase {
        name: None,
        strategy,
        concurrency,
        tasks: (0..n).collect(),
    };
    match strategy {
        Strategy::Sequential | Strategy::Hierarchical => {
            if !spec.execution.task_groups.is_empty() && strategy == Strategy::Sequential {
                let group = &spec.execution.task_groups[0];
                diags.push(
                    Diagnostic::warning(
                        "`task_groups` are used only with `strategy: mixed`; they are ignored",
                    )
                    .at(file, group.loc, "ignored under this strategy")
                    .hint("set `strategy: mixed` to run the groups in order"),
                );
            }
            (vec![all(strategy, 1)], vec![0; n])
        }
        Strategy::Parallel => (vec![all(Strategy::Parallel, max_parallel)], vec![0; n]),
        Strategy::Mixed => {
            let groups = &spec.execution.task_groups;
            if groups.is_empty() {
                diags.push(
                    Diagnostic::error("strategy `mixed` needs `task_groups`")
                        .at(file, spec.tasks.first().map(|t| t.name_loc).unwrap_or_default(), "no group says when this runs")
                        .hint("add `execution.task_groups: [{name, tasks: [...], execution_strategy: parallel}]`"),
                );
                return (vec![all(Strategy::Sequential, 1)], vec![0; n]);
            }
            let mut phase_of = vec![usize::MAX; n];
            let mut phases = Vec::new();
            for (g, group) in groups.iter().enumerate() {
                let mut tasks = Vec::new();
                for reference in &group.tasks {
                    let Some(&i) = index.get(reference.name.as_str()) else {
                        if spec.rejected_task_names.contains(&reference.name) {
                            continue;
                        }
                        let hint = match did_you_mean(&reference.name, index.keys().copied()) {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => "every name in a group must be a task of this orchestra".into(),
                        };
                        diags.push(
                            Diagnostic::error(format!(
                                "task group `{}` names unknown task `{}`",
                                group.name, reference.name
                            ))
                            .at(file, reference.loc, "no task has this name")
                            .hint(hint),
                        );
                        continue;
                    };
                    if phase_of[i] != usize::MAX {
                        let first: &str = &groups[phase_of[i]].name;
                        diags.push(
                            Diagnostic::error(format!(
                                "task `{}` is in two task groups: `{first}` and `{}`",
                                reference.name, group.name
                            ))
                            .at(file, reference.loc, "already in another group")
                            .hint(format!("keep `{}` in one group only", reference.name)),
                        );
                        continue;
                    }
                    phase_of[i] = g;
                    tasks.push(i);
                }
                let concurrency = match group.execution_strategy {
                    Strategy::Parallel => group.max_concurrency.unwrap_or(max_parallel).max(1),
                    _ => 1,
                };
                phases.push(Phase {
                    name: Some(group.name.clone()),
                    strategy: group.execution_strategy,
                    concurrency,
                    tasks,
                });
            }
            let ungrouped: Vec<usize> = (0..n).filter(|&i| phase_of[i] == usize::MAX).collect();
            if !ungrouped.is_empty() {
                for &i in &ungrouped {
                    diags.push(
                        Diagnostic::warning(format!(
                            "task `{}` is in no task group; it runs after the last group",
                            spec.tasks[i].name
                        ))
                        .at(
                            file,
                            spec.tasks[i].name_loc,
                            "not in any `task_groups` entry",
                        )
                        .hint("add it to one of the `task_groups`"),
                    );
                    phase_of[i] = phases.len();
                }
                phases.push(Phase {
                    name: Some("ungrouped".into()),
                    strategy: Strategy::Sequential,
                    concurrency: 1,
                    tasks: ungrouped,
                });
            }
            // Groups run in order: a task cannot wait for a task of a later group.
            for (i, list) in deps.iter().enumerate() {
                for &j in list {
                    if phase_of[j] > phase_of[i] && phase_of[j] != usize::MAX {
                        let task = &spec.tasks[i];
                        let loc = task
                            .context
                            .iter()
                            .chain(task.dependencies.iter().map(|d| &d.task))
                            .find(|r| r.name == spec.tasks[j].name.as_str())
                            .map(|r| r.loc)
                            .unwrap_or(task.name_loc);
                        diags.push(
                            Diagnostic::error(format!(
                                "task `{}` (group `{}`) waits for `{}`, which is in the later group `{}`",
                                task.name,
                                phases[phase_of[i]].name.as_deref().unwrap_or_default(),
                                spec.tasks[j].name,
                                phases[phase_of[j]].name.as_deref().unwrap_or_default()
                            ))
                            .at(file, loc, "this task runs in a later group")
                            .hint("groups run in order: move one of the two tasks so the dependency comes first"),
                        );
                    }
                }
            }
            (phases, phase_of)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, prop_oneof, proptest, Just};
    use proptest::strategy::Strategy as _;
    use std::path::Path;

    fn orchestra(tasks: &[(Vec<usize>, &str)], strategy: &str, max_parallel: usize) -> String {
        let mut yaml = format!("metadata:\n  id: prop\norchestra:\n  execution:\n    strategy: {strategy}\n    max_parallel_tasks: {max_parallel}\ntasks:\n");
        for (i, (deps, priority)) in tasks.iter().enumerate() {
            yaml.push_str(&format!(
                "  - name: t{i}\n    agent: a\n    priority: {priority}\n"
            ));
            if !deps.is_empty() {
                let names: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
                yaml.push_str(&format!("    context: [{}]\n", names.join(", ")));
            }
        }
        yaml
    }

    fn plan_of(yaml: &str) -> (Option<Plan>, Diagnostics) {
        let file = SourceFile::new(Path::new("prop_orchestra.yaml"), yaml.to_string());
        let root = crate::yaml::parse(&file).expect("valid yaml");
        let mut diags = Diagnostics::default();
        let spec = crate::spec::decode_orchestra(&file, &root, &mut diags).expect("decodes");
        let plan = Plan::build(&spec, PlanOptions::default(), &mut diags);
        (plan, diags)
    }

    /// The waves by the definition: at each wave, every ready task of the phase, best first,
    /// cut to the phase's concurrency (the simulation keeps a heap instead of this scan).
    fn scanned_waves(plan: &Plan) -> Vec<Vec<usize>> {
        let mut waiting_on: Vec<usize> = plan.deps.iter().map(Vec::len).collect();
        let mut done = vec![false; plan.len()];
        let mut waves = Vec::new();
        for (p, phase) in plan.phases.iter().enumerate() {
            loop {
                let mut ready: Vec<usize> = phase
                    .tasks
                    .iter()
                    .copied()
                    .filter(|&t| !done[t] && waiting_on[t] == 0 && plan.phase_of[t] == p)
                    .collect();
                if ready.is_empty() {
                    break;
                }
                ready.sort_by_key(|&t| (std::cmp::Reverse(plan.priority[t]), t));
                ready.truncate(phase.concurrency.max(1));
                for &t in &ready {
                    done[t] = true;
                    for &k in &plan.dependents[t] {
                        waiting_on[k] -= 1;
                    }
                }
                waves.push(ready);
            }
        }
        waves
    }

    fn priority_name(p: u8) -> &'static str {
        Priority::NAMES[p as usize % 4]
    }

    /// A random DAG: every edge points to an earlier task.
    fn dag() -> impl proptest::strategy::Strategy<Value = Vec<(Vec<usize>, &'static str)>> {
        (1usize..40).prop_flat_map(|n| {
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
                    any::<u8>(),
                ),
                n,
            )
            .prop_map(|raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, (deps, p))| {
                        let mut deps: Vec<usize> = if i == 0 {
                            Vec::new()
                        } else {
                            deps.iter().map(|d| d.index(i)).collect()
                        };
                        deps.sort();
                        deps.dedup();
                        (deps, priority_name(p))
                    })
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn every_order_respects_every_edge(tasks in dag(), parallel in 1usize..6, strategy in prop_oneof![Just("sequential"), Just("parallel")]) {
            let (plan, diags) = plan_of(&orchestra(&tasks, strategy, parallel));
            let plan = plan.unwrap_or_else(|| panic!("{}", diags.render(false)));
            prop_assert_eq!(plan.order.len(), tasks.len());
            for (i, (deps, _)) in tasks.iter().enumerate() {
                for &d in deps {
                    prop_assert!(plan.position[d] < plan.position[i], "t{} must come before t{}", d, i);
                }
            }
            for wave in &plan.waves {
                let limit = if strategy == "sequential" { 1 } else { parallel };
                prop_assert!(wave.len() <= limit);
                for &i in wave {
                    for &d in &tasks[i].0 {
                        prop_assert!(!wave.contains(&d), "a task never starts with its own dependency");
                    }
                }
            }
        }

        #[test]
        fn the_waves_are_those_of_a_full_scan_per_wave(tasks in dag(), parallel in 1usize..6, strategy in prop_oneof![Just("sequential"), Just("parallel")]) {
            let (plan, diags) = plan_of(&orchestra(&tasks, strategy, parallel));
            let plan = plan.unwrap_or_else(|| panic!("{}", diags.render(false)));
            prop_assert_eq!(&plan.waves, &scanned_waves(&plan));
        }

        #[test]
        fn a_cycle_is_always_detected(tasks in dag(), from in any::<proptest::sample::Index>(), to in any::<proptest::sample::Index>()) {
            let mut tasks = tasks;
            let n = tasks.len();
            // Close a cycle: a back edge from an earlier task to a later one that (transitively) depends on it, or a self-loop.
            let a = from.index(n);
            let b = to.index(n).max(a);
            let mut chain: Vec<usize> = vec![b];
            let mut node = b;
            while node > a {
                let next = node - 1;
                if !tasks[node].0.contains(&next) {
                    tasks[node].0.push(next);
                }
                node = next;
                chain.push(node);
            }
            tasks[a].0.push(b);
            let (plan, diags) = plan_of(&orchestra(&tasks, "sequential", 1));
            prop_assert!(plan.is_none());
            let text = diags.render(false);
            if a == b {
                prop_assert!(text.contains("lists itself in context"), "{}", text);
            } else {
                prop_assert!(text.contains("dependency cycle"), "{}", text);
            }
        }
    }

    #[test]
    fn sequential_order_takes_priority_then_file_order() {
        let tasks = vec![
            (vec![], "low"),
            (vec![], "critical"),
            (vec![0], "critical"),
            (vec![], "medium"),
            (vec![], "medium"),
        ];
        let (plan, _) = plan_of(&orchestra(&tasks, "sequential", 1));
        let plan = plan.expect("valid");
        assert_eq!(plan.order, vec![1, 3, 4, 0, 2]);
    }
}
