//! `GET /events`: the live event stream (Server-Sent Events). A user sees the events of
//! their own user, an admin everyone's (or one user's with `?user=`). The README's "Events"
//! section documents the wire format.

use super::caller::Caller;
use crate::app::AppState;
use crate::error::Error;
use crate::events::{Event, Resume, StreamGuard, Subscription};
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use http::HeaderMap;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

/// A `: keep-alive` comment this often on a quiet stream, so proxies and browsers keep it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this user's events (user id or slug). Admins may name anyone; a user only
    /// themself (`me`).
    pub user: Option<String>,
}

/// Which events one stream sends.
struct Filter {
    slug: String,
    admin: bool,
    /// An admin's `?user=`.
    only: Option<String>,
}

impl Filter {
    fn passes(&self, e: &Event) -> bool {
        if !e.visible_to(&self.slug, self.admin) {
            return false;
        }
        match &self.only {
            Some(u) => e.user.as_deref() == Some(u.as_str()),
            None => true,
        }
    }
}

/// Live events: `gateway.state`, `catalog.changed`, `secrets.changed` (and `reset` when the
/// client must reload its state). Send `Last-Event-ID` to resume after a reconnect.
#[utoipa::path(get, path = "/events", operation_id = "events", tag = "events",
    params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the `id` of the last event received, to resume after it")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "An endless event stream: `id: <seq>`, `event: <type>`, `data: <Event JSON>`; `event: reset` (`data: {\"reason\": ...}`) when the client must reload its state"),
        (status = 401), (status = 403),
        (status = 429, description = "The user holds `events.max_streams_per_user` streams already")),
    security(("bearer" = [])))]
pub async fn stream(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let admin = caller.0.admin;
    let only = match q.user.as_deref() {
        None => None,
        Some(u) => {
            let slug = caller.target_slug(u);
            if !admin && slug != caller.slug() {
                return Err(Error::Forbidden(
                    "you may only follow your own events (use `me`)".into(),
                ));
            }
            Some(slug)
        }
    };
    let bus = s.services.events.clone();
    let guard = bus
        .open_stream(caller.slug())
        .map_err(|e| Error::TooManyStreams(e.0))?;
    let resume = Resume::from_header(headers.get("last-event-id").map(|v| v.as_bytes()));
    let sub = bus.subscribe(resume);
    let filter = Filter {
        slug: caller.slug().to_string(),
        admin,
        only,
    };
    let events = stream::unfold(Open::new(sub, filter, guard), |mut open| async move {
        let event = open.next().await?;
        Some((Ok::<_, Infallible>(event), open))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// One open stream's state.
struct Open {
    reset: Option<(&'static str, Option<u64>)>,
    replay: VecDeque<Arc<Event>>,
    sub: Subscription,
    filter: Filter,
    /// Holds the user's stream place until the client goes.
    _guard: StreamGuard,
}

impl Open {
    fn new(mut sub: Subscription, filter: Filter, guard: StreamGuard) -> Self {
        Self {
            reset: sub.reset.map(|r| (r, sub.last_issued)),
            replay: std::mem::take(&mut sub.replay).into(),
            sub,
            filter,
            _guard: guard,
        }
    }

    /// The next frame; `None` ends the stream (shutdown).
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some((reason, last)) = self.reset.take() {
            return Some(reset(reason, last));
        }
        while let Some(e) = self.replay.pop_front() {
            if self.filter.passes(&e) {
                return Some(frame(&e));
            }
        }
        loop {
            tokio::select! {
                biased;
                _ = self.sub.closed.cancelled() => return None,
                r = self.sub.live.recv() => match r {
                    Ok(e) if self.filter.passes(&e) => return Some(frame(&e)),
                    Ok(_) => {}
                    // Too slow to keep up: the channel dropped events for it rather than
                    // buffering without bound. It reloads and continues with what is left.
                    Err(RecvError::Lagged(_)) => return Some(reset("lagged", None)),
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn frame(e: &Event) -> SseEvent {
    let base = SseEvent::default().id(e.seq.to_string()).event(e.kind);
    match serde_json::to_string(e) {
        Ok(data) => base.data(data),
        // Not expected (the event is plain data); the client reloads rather than miss it.
        Err(_) => reset("internal", None),
    }
}

/// `event: reset`; with the newest id issued, so a reconnect after the reload resumes there.
fn reset(reason: &'static str, last: Option<u64>) -> SseEvent {
    let e = SseEvent::default()
        .event("reset")
        .data(serde_json::json!({ "reason": reason }).to_string());
    match last {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventBody, EventBus};

    fn secrets(bus: &EventBus, user: &str) -> u64 {
        bus.publish(
            "secrets.changed",
            Some(user),
            EventBody::Secrets {
                action: "put",
                count: 1,
            },
        )
    }

    fn open(bus: &Arc<EventBus>, slug: &str, admin: bool, resume: Resume) -> Open {
        let filter = Filter {
            slug: slug.into(),
            admin,
            only: None,
        };
        Open::new(
            bus.subscribe(resume),
            filter,
            bus.open_stream(slug).unwrap(),
        )
    }

    /// The frame as the wire carries it.
    async fn text(e: SseEvent) -> String {
        let stream = futures_util::stream::iter([Ok::<_, Infallible>(e)]);
        let resp = Sse::new(stream).into_response();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_lagging_reader_gets_reset_then_continues() {
        let bus = Arc::new(EventBus::starting_at(10, 2, 4));
        let mut o = open(&bus, "a", false, Resume::Live);
        for _ in 0..5 {
            secrets(&bus, "a");
        }
        let reset = text(o.next().await.unwrap()).await;
        assert!(reset.contains("event: reset"), "{reset}");
        assert!(reset.contains(r#"{"reason":"lagged"}"#), "{reset}");
        // The channel kept the last two.
        let next = text(o.next().await.unwrap()).await;
        assert!(next.starts_with("id: 13\n"), "{next}");
    }

    #[tokio::test]
    async fn replay_and_live_events_are_filtered_by_user() {
        let bus = Arc::new(EventBus::starting_at(10, 8, 4));
        secrets(&bus, "a");
        let mut o = open(&bus, "b", false, Resume::After(10));
        secrets(&bus, "b");
        secrets(&bus, "a");
        secrets(&bus, "b");
        let first = text(o.next().await.unwrap()).await;
        assert!(
            first.starts_with("id: 11\nevent: secrets.changed\ndata: {"),
            "{first}"
        );
        assert!(first.contains(r#""user":"b""#), "{first}");
        assert!(text(o.next().await.unwrap()).await.starts_with("id: 13\n"));
        bus.close();
        assert!(o.next().await.is_none(), "closing the bus ends the stream");
    }
}
