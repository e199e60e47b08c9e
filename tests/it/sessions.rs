//! MCP session ids belong to the user who first received them: sealed for them in the
//! header (any replica opens it), bound in this process for the legacy SSE query.

use crate::support::upstream::{channel_response, full, Body};
use crate::support::{body_json, tokens, Frontdoor, Proto, TestUpstream};
use bytes::Bytes;
use http::Response;

#[tokio::test]
async fn another_users_session_id_is_a_404_that_never_reaches_the_gateway() {
    let up = TestUpstream::start(|req| async move {
        let mut b = Response::builder().header("content-type", "application/json");
        if req.headers().get("mcp-session-id").is_none() {
            b = b.header("mcp-session-id", "sess-of-alice");
        }
        b.body(full("{}")).unwrap() as Response<Body>
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H2);
    let init = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    let sealed = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        sealed.starts_with("fd1.") && !sealed.contains("sess-of-alice"),
        "the client gets the gateway's id sealed: {sealed}"
    );
    let before = up.seen().len();

    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let truncated = sealed[..sealed.len() - 3].to_string();
    let other_key = {
        let ring = mcp_frontdoor::secrets::KeyRing::single(
            mcp_frontdoor::secrets::MasterKey::from_bytes([9; 32]),
        );
        mcp_frontdoor::proxy::sealed::SessionSeal::from_keyring(&ring)
            .seal("alice", "sess-of-alice")
            .unwrap()
    };
    for (who, id, what) in [
        ("bob", sealed.as_str(), "alice's sealed id used by bob"),
        ("bob", "sess-of-alice", "the raw upstream id used by bob"),
        (
            "alice",
            "sess-of-alice",
            "the raw upstream id, even by its owner",
        ),
        ("alice", tampered.as_str(), "a tampered id"),
        ("alice", truncated.as_str(), "a truncated id"),
        (
            "alice",
            other_key.as_str(),
            "an id sealed under another key",
        ),
    ] {
        let resp = c
            .send(
                c.req("POST", "/mcp")
                    .header("authorization", tokens::bearer(who))
                    .header("mcp-session-id", id),
            )
            .await;
        assert_eq!(resp.status(), 404, "{what}");
        assert_eq!(
            crate::support::reason(&body_json(resp).await),
            "session_not_found",
            "{what}"
        );
    }
    assert_eq!(
        up.seen().len(),
        before,
        "no refused request reached a gateway"
    );

    let own = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("mcp-session-id", &sealed),
        )
        .await;
    assert_eq!(own.status(), 200);
    assert_eq!(
        up.seen().last().unwrap().headers["mcp-session-id"],
        "sess-of-alice"
    );

    // Another replica (same master key, nothing else shared) opens it too.
    let replica = Frontdoor::builder().upstream(&up.url()).start().await;
    let c2 = replica.client(Proto::H1);
    let moved = c2
        .send(
            c2.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("mcp-session-id", &sealed),
        )
        .await;
    assert_eq!(
        moved.status(),
        200,
        "the session goes on on another replica"
    );
    assert_eq!(
        up.seen().last().unwrap().headers["mcp-session-id"],
        "sess-of-alice"
    );

    let end = c
        .send(
            c.req("DELETE", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("mcp-session-id", &sealed),
        )
        .await;
    assert_eq!(end.status(), 200);
    assert_eq!(up.seen().last().unwrap().method, http::Method::DELETE);
}

#[tokio::test]
async fn legacy_sse_session_ids_are_bound_from_the_endpoint_event() {
    let up = TestUpstream::start(|req| async move {
        if req.uri().path() == "/sse" {
            let (tx, resp) = channel_response("text/event-stream");
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from_static(
                        b"event: endpoint\ndata: /message?sessionId=leg",
                    ))
                    .await;
                let _ = tx.send(Bytes::from_static(b"acy-1\n\n")).await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
            resp
        } else {
            Response::builder().status(202).body(full("")).unwrap()
        }
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let mut stream = c.get_as("alice", "/sse").await;
    let mut got = String::new();
    while !got.contains("\n\n") {
        let f = http_body_util::BodyExt::frame(stream.body_mut())
            .await
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(f.data_ref().unwrap()));
    }
    assert!(got.contains("sessionId=legacy-1"));
    let seen_before = up.seen().len();
    let stolen = c
        .send(
            c.req("POST", "/message?sessionId=legacy-1")
                .header("authorization", tokens::bearer("bob")),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    assert_eq!(up.seen().len(), seen_before);
    let own = c
        .send(
            c.req("POST", "/message?sessionId=legacy-1")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    assert_eq!(own.status(), 202);
}

/// A gateway that names the session on every answer (rmcp does): the client gets back the very
/// sealed id it holds, whichever spelling it sent it under, and the gateway sees only its own
/// id; a gateway that names another session gets that one sealed afresh, for its user only.
#[tokio::test]
async fn the_sealed_id_a_client_holds_comes_back_unchanged() {
    let up = TestUpstream::start(|req| async move {
        let id = match req.headers().get("mcp-session-id") {
            _ if req.headers().contains_key("x-switch") => "s-2".to_string(),
            Some(v) => v.to_str().unwrap().to_string(),
            None => "s-1".to_string(),
        };
        Response::builder()
            .header("content-type", "application/json")
            .header("mcp-session-id", id)
            .body(full("{}"))
            .unwrap() as Response<Body>
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let post = |id: Option<(&'static str, String)>, switch: bool| {
        let mut r = c
            .req("POST", "/mcp")
            .header("authorization", tokens::bearer("alice"));
        if let Some((name, id)) = id {
            r = r.header(name, id);
        }
        if switch {
            r = r.header("x-switch", "1");
        }
        c.send(r)
    };
    let sealed = post(None, false).await.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(sealed.starts_with("fd1."), "{sealed}");
    for spelling in ["mcp-session-id", "mcp_session_id", "Mcp-Session-ID"] {
        let resp = post(Some((spelling, sealed.clone())), false).await;
        assert_eq!(resp.status(), 200, "{spelling}");
        assert_eq!(
            resp.headers()["mcp-session-id"],
            sealed.as_str(),
            "{spelling}"
        );
        let seen = up.seen().last().unwrap().headers.clone();
        assert_eq!(seen["mcp-session-id"], "s-1", "{spelling}");
        assert!(!seen.contains_key("mcp_session_id"), "{spelling}: {seen:?}");
        assert!(
            seen.get_all("mcp-session-id").iter().count() == 1,
            "{spelling}: {seen:?}"
        );
    }
    // The gateway moved the session: that id is sealed for alice, not her old one handed back.
    let moved = post(Some(("mcp-session-id", sealed.clone())), true).await;
    let resealed = moved.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        resealed.starts_with("fd1.") && resealed != sealed,
        "{resealed}"
    );
    assert_eq!(
        post(Some(("mcp-session-id", resealed.clone())), false)
            .await
            .status(),
        200
    );
    assert_eq!(up.seen().last().unwrap().headers["mcp-session-id"], "s-2");
    let bob = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("bob"))
                .header("mcp-session-id", &resealed),
        )
        .await;
    assert_eq!(bob.status(), 404, "alice's resealed id is not bob's");
}

/// A shared gateway that speaks like docker/mcp-gateway's Go SDK: its legacy SSE endpoint
/// names the session `?sessionid=`.
async fn go_style_gateway() -> TestUpstream {
    TestUpstream::start(|req| async move {
        if req.uri().path() == "/sse" {
            let (tx, resp) = channel_response("text/event-stream");
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from_static(
                        b"event: endpoint\ndata: /message?sessionid=GOSESSION1\n\n",
                    ))
                    .await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
            resp
        } else {
            Response::builder().status(202).body(full("")).unwrap()
        }
    })
    .await
}

#[tokio::test]
async fn session_keys_in_any_case_or_encoding_are_bound_and_checked() {
    let up = go_style_gateway().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let mut stream = c.get_as("alice", "/sse").await;
    let mut got = String::new();
    while !got.contains("\n\n") {
        let f = http_body_util::BodyExt::frame(stream.body_mut())
            .await
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(f.data_ref().unwrap()));
    }
    let seen_before = up.seen().len();
    let post = |query: String| {
        let c = c.clone();
        async move {
            let resp = c
                .send(
                    c.req("POST", &format!("/message?{query}"))
                        .header("authorization", tokens::bearer("bob")),
                )
                .await;
            let status = resp.status().as_u16();
            (status, body_json(resp).await)
        }
    };
    // Every way a gateway would read alice's session: refused as not bob's.
    for query in [
        "sessionid=GOSESSION1",
        "SESSIONID=GOSESSION1",
        "session%49d=GOSESSION1",
        "sessionId=GOSESSION1",
        "session_id=GOSESSION1",
        "sessionid=GOSESSION%31",
        "x=1;sessionid=GOSESSION1",
    ] {
        let (status, body) = post(query.into()).await;
        assert_eq!(status, 404, "{query}: {body}");
        assert_eq!(
            crate::support::reason(&body),
            "session_not_found",
            "{query}"
        );
    }
    // Two different ids in one request (a duplicated key, or a value some parsers cut at `;`):
    // which one the gateway takes is not ours to guess.
    for query in [
        "sessionid=bobs-own&sessionid=GOSESSION1",
        "sessionId=bobs-own&SESSIONID=GOSESSION1",
        "sessionid=GOSESSION1;x=1",
    ] {
        let (status, body) = post(query.into()).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    // The header path: respelled or repeated.
    let stolen = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("bob"))
                .header("mcp_session_id", "GOSESSION1"),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    let repeated = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("bob"))
                .header("mcp-session-id", "bobs-own")
                .header("mcp-session-id", "GOSESSION1"),
        )
        .await;
    assert_eq!(repeated.status(), 400);
    let mixed = c
        .send(
            c.req("POST", "/message?sessionid=bobs-own")
                .header("authorization", tokens::bearer("bob"))
                .header("mcp-session-id", "GOSESSION1"),
        )
        .await;
    assert_eq!(mixed.status(), 400);
    assert_eq!(
        up.seen().len(),
        seen_before,
        "none of bob's requests reached the gateway"
    );

    let own = c
        .send(
            c.req("POST", "/message?sessionid=GOSESSION1")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    assert_eq!(own.status(), 202);
    assert_eq!(up.seen().len(), seen_before + 1);
}
