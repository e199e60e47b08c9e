//! A service read back as the runtime's [`ContainerInfo`]: its newest task says the state,
//! the start time and the exit code; the spec says name, labels and environment. Pure.

use super::super::{ContainerInfo, ContainerState};
use bollard::models::{Service, Task, TaskState};
use std::collections::HashMap;

/// The label Swarm puts on a task's container: the service it belongs to.
pub(super) const SERVICE_ID_LABEL: &str = "com.docker.swarm.service.id";

/// The task a service runs now (or ran last): the most recently created one.
pub(super) fn newest(tasks: &[Task]) -> Option<&Task> {
    tasks.iter().max_by_key(|t| {
        (
            t.created_at.as_deref().and_then(crate::time::parse_rfc3339),
            t.version.as_ref().and_then(|v| v.index),
        )
    })
}

/// The coarse state of a task (no task: the service was made but not started).
pub(super) fn state_of(task: Option<&Task>) -> ContainerState {
    let Some(state) = task.and_then(|t| t.status.as_ref()?.state) else {
        return ContainerState::Created;
    };
    match state {
        TaskState::RUNNING => ContainerState::Running,
        TaskState::COMPLETE
        | TaskState::SHUTDOWN
        | TaskState::FAILED
        | TaskState::REJECTED
        | TaskState::ORPHANED
        | TaskState::REMOVE => ContainerState::Exited,
        _ => ContainerState::Other,
    }
}

/// The id of the task's container (set once a node started it).
pub(super) fn container_of(task: &Task) -> Option<&str> {
    task.status
        .as_ref()?
        .container_status
        .as_ref()?
        .container_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

/// Why a task that did not run ended, in Swarm's words (for logs and start failures).
pub(super) fn why(task: &Task) -> String {
    let s = task.status.clone().unwrap_or_default();
    let state = s.state.map_or("unknown".to_string(), |s| s.to_string());
    match (s.err.filter(|e| !e.is_empty()), s.message) {
        (Some(err), _) => format!("task {state}: {err}"),
        (None, Some(m)) => format!("task {state}: {m}"),
        (None, None) => format!("task {state}"),
    }
}

/// The service as a container; addresses are the caller's (they need more engine calls).
pub(super) fn info_of(service: &Service, task: Option<&Task>) -> ContainerInfo {
    let spec = service.spec.clone().unwrap_or_default();
    let container = spec.task_template.and_then(|t| t.container_spec);
    let state = state_of(task);
    let status = task.and_then(|t| t.status.as_ref());
    ContainerInfo {
        id: service.id.clone().unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        state,
        labels: spec.labels.unwrap_or_default(),
        addresses: HashMap::new(),
        loopback_port: None,
        env: container.and_then(|c| c.env).unwrap_or_default(),
        // The task's status changed last when it began to run.
        started_at: status
            .filter(|_| state == ContainerState::Running)
            .and_then(|s| s.timestamp.as_deref())
            .and_then(crate::time::parse_rfc3339),
        exit_code: status
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.exit_code),
        oom_killed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStatus, ObjectVersion, TaskStatus};

    fn task(created: &str, state: TaskState, container: &str) -> Task {
        Task {
            created_at: Some(created.into()),
            version: Some(ObjectVersion { index: Some(1) }),
            status: Some(TaskStatus {
                state: Some(state),
                timestamp: Some(created.into()),
                err: Some("no such image".into()),
                container_status: Some(ContainerStatus {
                    container_id: Some(container.into()),
                    exit_code: Some(137),
                    pid: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_task_says_the_state() {
        let old = task("2026-01-01T00:00:00Z", TaskState::FAILED, "a");
        let new = task("2026-01-01T00:00:05Z", TaskState::RUNNING, "b");
        let tasks = [new.clone(), old.clone()];
        let n = newest(&tasks).unwrap();
        assert_eq!(container_of(n), Some("b"));
        assert_eq!(state_of(Some(n)), ContainerState::Running);
        assert_eq!(state_of(Some(&old)), ContainerState::Exited);
        assert_eq!(state_of(None), ContainerState::Created);
        let pending = task("2026-01-01T00:00:00Z", TaskState::PENDING, "");
        assert_eq!(state_of(Some(&pending)), ContainerState::Other);
        assert_eq!(container_of(&pending), None);
        assert_eq!(why(&old), "task failed: no such image");
    }

    #[test]
    fn a_service_reads_back_as_a_container() {
        use bollard::models::{ServiceSpec, TaskSpec, TaskSpecContainerSpec};
        let service = Service {
            id: Some("svc1".into()),
            spec: Some(ServiceSpec {
                name: Some("mcp-fd-t-alice".into()),
                labels: Some(HashMap::from([("k".into(), "v".into())])),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        env: Some(vec!["TOKEN=x".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = task("2026-01-01T00:00:05Z", TaskState::RUNNING, "b");
        let i = info_of(&service, Some(&t));
        assert_eq!((i.id.as_str(), i.name.as_str()), ("svc1", "mcp-fd-t-alice"));
        assert_eq!(i.env, ["TOKEN=x"]);
        assert_eq!(i.labels["k"], "v");
        assert!(i.started_at.is_some());
        assert_eq!(i.exit_code, Some(137));
        let stopped = info_of(&service, None);
        assert_eq!(stopped.state, ContainerState::Created);
        assert!(stopped.started_at.is_none());
    }
}
