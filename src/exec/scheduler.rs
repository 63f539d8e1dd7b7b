//! The scheduler: which task starts next. Ready tasks are taken by priority (critical first),
//! then by their order in the file; each phase starts once the previous one has ended, and a
//! phase runs at most its concurrency at once. It holds the one state of every task (the
//! manifest's `TaskStatus`) and can take new tasks while running, keeping the graph's
//! invariants: a new task depends only on tasks that already exist, so no cycle can form.
//! The dry run and the dispatcher use the same scheduler, so the printed order is the order a
//! run takes.

use crate::plan::Plan;
use crate::spec::Priority;
use crate::workspace::TaskStatus;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone)]
struct PhaseState {
    concurrency: usize,
    left: usize,
}

pub struct Scheduler {
    state: Vec<TaskStatus>,
    dependents: Vec<Vec<usize>>,
    waiting_on: Vec<usize>,
    priority: Vec<Priority>,
    phase_of: Vec<usize>,
    phases: Vec<PhaseState>,
    phase: usize,
    running: usize,
    ready: BinaryHeap<(Priority, Reverse<usize>)>,
    /// Start order when every task succeeds; new tasks are appended.
    order: Vec<usize>,
}

/// Why a task could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("dependency {0} does not exist")]
    UnknownDependency(usize),
}

impl Scheduler {
    pub fn new(plan: &Plan) -> Scheduler {
        let mut scheduler = Scheduler {
            state: vec![TaskStatus::Pending; plan.len()],
            dependents: plan.dependents.clone(),
            waiting_on: plan.deps.iter().map(Vec::len).collect(),
            priority: plan.priority.clone(),
            phase_of: plan.phase_of.clone(),
            phases: plan
                .phases
                .iter()
                .map(|p| PhaseState {
                    concurrency: p.concurrency,
                    left: p.tasks.len(),
                })
                .collect(),
            phase: 0,
            running: 0,
            ready: BinaryHeap::new(),
            order: plan.order.clone(),
        };
        scheduler.enter_phase();
        scheduler
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Task indices in start order (new tasks last).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    fn enter_phase(&mut self) {
        while self.phase < self.phases.len() && self.phases[self.phase].left == 0 {
            self.phase += 1;
        }
        if self.phase < self.phases.len() {
            for task in 0..self.state.len() {
                if self.phase_of[task] == self.phase
                    && self.state[task] == TaskStatus::Pending
                    && self.waiting_on[task] == 0
                {
                    self.ready.push((self.priority[task], Reverse(task)));
                }
            }
        }
    }

    /// Adds a task to the last phase, after `deps` (which must exist). A dependency that already
    /// failed or was skipped skips the new task at once (returned as `Skipped`).
    pub fn add_task(&mut self, deps: &[usize], priority: Priority) -> Result<usize, AddError> {
        if let Some(&bad) = deps.iter().find(|&&d| d >= self.state.len()) {
            return Err(AddError::UnknownDependency(bad));
        }
        let index = self.state.len();
        if self.phases.is_empty() {
            self.phases.push(PhaseState {
                concurrency: 1,
                left: 0,
            });
        }
        let phase = self.phases.len() - 1;
        // Every phase had ended: the last one opens again for the new task.
        self.phase = self.phase.min(phase);
        let blocked = deps
            .iter()
            .any(|&d| matches!(self.state[d], TaskStatus::Failed | TaskStatus::Skipped));
        let waiting = deps
            .iter()
            .filter(|&&d| !self.state[d].has_output())
            .count();
        self.state.push(TaskStatus::Pending);
        self.dependents.push(Vec::new());
        for &d in deps {
            self.dependents[d].push(index);
        }
        self.waiting_on.push(waiting);
        self.priority.push(priority);
        self.phase_of.push(phase);
        self.order.push(index);
        self.phases[phase].left += 1;
        if blocked {
            self.settle(index, TaskStatus::Skipped);
        } else if waiting == 0 && phase == self.phase {
            self.ready.push((priority, Reverse(index)));
        }
        Ok(index)
    }

    /// The next task to start now, if any is ready and a slot is free.
    pub fn next_ready(&mut self) -> Option<usize> {
        let phase = self.phases.get(self.phase)?;
        if self.running >= phase.concurrency {
            return None;
        }
        let (_, Reverse(task)) = self.ready.pop()?;
        self.state[task] = TaskStatus::Running;
        self.running += 1;
        Some(task)
    }

    /// Records a running task's end (`Succeeded`, `Cached`, `Failed` or `Skipped` by a budget).
    /// A task without an output skips everything downstream; the skipped tasks are returned in
    /// start order.
    pub fn finish(&mut self, task: usize, status: TaskStatus) -> Vec<usize> {
        self.running = self.running.saturating_sub(1);
        let mut skipped = Vec::new();
        self.settle(task, status);
        if status.has_output() {
            for k in self.dependents[task].clone() {
                self.waiting_on[k] = self.waiting_on[k].saturating_sub(1);
                if self.waiting_on[k] == 0
                    && self.state[k] == TaskStatus::Pending
                    && self.phase_of[k] == self.phase
                {
                    self.ready.push((self.priority[k], Reverse(k)));
                }
            }
        } else {
            let mut stack: Vec<usize> = self.dependents[task].clone();
            while let Some(k) = stack.pop() {
                if self.state[k] == TaskStatus::Pending {
                    self.settle(k, TaskStatus::Skipped);
                    skipped.push(k);
                    stack.extend(self.dependents[k].iter().copied());
                }
            }
            let position: std::collections::HashMap<usize, usize> = self
                .order
                .iter()
                .enumerate()
                .map(|(p, &t)| (t, p))
                .collect();
            skipped.sort_by_key(|k| position.get(k).copied().unwrap_or(usize::MAX));
        }
        if self.phases.get(self.phase).is_some_and(|p| p.left == 0) {
            self.enter_phase();
        }
        skipped
    }

    fn settle(&mut self, task: usize, state: TaskStatus) {
        self.state[task] = state;
        if let Some(phase) = self.phases.get_mut(self.phase_of[task]) {
            phase.left = phase.left.saturating_sub(1);
        }
    }

    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running
    }

    pub fn state(&self, task: usize) -> TaskStatus {
        self.state[task]
    }

    /// Ends every pending task with `status` (after a stop), in start order; returns them.
    pub fn close_pending(&mut self) -> Vec<usize> {
        let left: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&i| self.state[i] == TaskStatus::Pending)
            .collect();
        for &i in &left {
            self.state[i] = TaskStatus::Skipped;
        }
        left
    }

    /// Marks tasks still running as failed (after an abort); returns them.
    pub fn abort_running(&mut self) -> Vec<usize> {
        let running: Vec<usize> = (0..self.state.len())
            .filter(|&i| self.state[i] == TaskStatus::Running)
            .collect();
        for &i in &running {
            self.state[i] = TaskStatus::Failed;
        }
        self.running = 0;
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::plan::PlanOptions;
    use crate::source::SourceFile;
    use std::path::Path;

    pub(crate) fn plan_of(yaml: &str) -> Plan {
        let file = SourceFile::new(Path::new("t_orchestra.yaml"), yaml.to_string());
        let root = crate::yaml::parse(&file).expect("valid yaml");
        let mut diags = Diagnostics::default();
        let spec = crate::spec::decode_orchestra(&file, &root, &mut diags).expect("decodes");
        Plan::build(&spec, PlanOptions::default(), &mut diags).expect("plans")
    }

    const FOUR: &str = "metadata:\n  id: t\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 4\ntasks:\n  - name: a\n    agent: x\n  - name: b\n    agent: x\n    context: [a]\n  - name: c\n    agent: x\n    context: [b]\n  - name: d\n    agent: x\n";

    #[test]
    fn a_failure_skips_everything_downstream() {
        let plan = plan_of(FOUR);
        let mut scheduler = Scheduler::new(&plan);
        assert_eq!(scheduler.next_ready(), Some(0));
        assert_eq!(scheduler.next_ready(), Some(3));
        assert_eq!(scheduler.finish(0, TaskStatus::Failed), vec![1, 2]);
        assert_eq!(
            scheduler.finish(3, TaskStatus::Succeeded),
            Vec::<usize>::new()
        );
        assert_eq!(scheduler.next_ready(), None);
        assert_eq!(scheduler.running(), 0);
        assert_eq!(scheduler.state(2), TaskStatus::Skipped);
    }

    #[test]
    fn takes_new_tasks_while_running() {
        let plan = plan_of(FOUR);
        let mut scheduler = Scheduler::new(&plan);
        assert_eq!(scheduler.next_ready(), Some(0));
        // A new task after `a`: ready once `a` ends.
        let e = scheduler.add_task(&[0], Priority::High).expect("added");
        assert_eq!(e, 4);
        assert_eq!(
            scheduler.add_task(&[9], Priority::Low),
            Err(AddError::UnknownDependency(9))
        );
        assert_eq!(scheduler.next_ready(), Some(3));
        assert_eq!(
            scheduler.finish(0, TaskStatus::Succeeded),
            Vec::<usize>::new()
        );
        // `e` is high priority: it goes before `b`.
        assert_eq!(scheduler.next_ready(), Some(4));
        assert_eq!(scheduler.next_ready(), Some(1));
        // A task after a failed one is skipped at once.
        scheduler.finish(1, TaskStatus::Failed);
        let f = scheduler.add_task(&[1], Priority::Medium).expect("added");
        assert_eq!(scheduler.state(f), TaskStatus::Skipped);
        assert_eq!(scheduler.order().last(), Some(&f));
    }
}
