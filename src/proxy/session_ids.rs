//! Finding every MCP session id a request carries, the way any gateway might read it.
//!
//! Session binding is only as good as this: an id the front door does not see is forwarded
//! unbound. Gateways disagree on spelling: the TypeScript SDK's legacy SSE endpoint uses
//! `?sessionId=`, docker/mcp-gateway's Go SDK `?sessionid=`, the Python SDK `?session_id=`,
//! and their query parsers percent-decode keys (`session%49d` is `sessionId`), turn `+` into a
//! space, and some older ones split on `;` as well as `&`. So keys are decoded and compared
//! without case, `_` or `-`, both splittings are read, and a request whose parts name two
//! different session ids is refused: which one a gateway would pick is not ours to guess.
//! The `Mcp-Session-Id` header gets the same treatment (`mcp_session_id` reaches some
//! servers as the same header; repeated headers are compared, not first-wins).

use http::HeaderMap;

/// A request whose session ids cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    #[error("the request names more than one MCP session id")]
    Conflicting,
    #[error("the MCP session id is not valid text")]
    NotText,
}

/// True for a (decoded) query key or header name that some gateway reads as the session id.
fn normalized_is(name: &str, want: &str) -> bool {
    let mut n = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase);
    want.chars().all(|w| n.next() == Some(w)) && n.next().is_none()
}

/// `application/x-www-form-urlencoded` decoding: `%XX` to its byte (a malformed escape
/// stays as it is), `+` to a space.
fn form_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Adds `value` to the single session id found so far.
fn add(found: &mut Option<String>, value: String) -> Result<(), SessionIdError> {
    match found {
        Some(v) if *v != value => Err(SessionIdError::Conflicting),
        Some(_) => Ok(()),
        None => {
            *found = Some(value);
            Ok(())
        }
    }
}

/// The one session id in a query string, if any (every splitting and spelling considered).
pub fn from_query(query: &str) -> Result<Option<String>, SessionIdError> {
    let mut found = None;
    let by_amp = query.split('&');
    let by_amp_and_semicolon = query.split(['&', ';']);
    for pair in by_amp.chain(by_amp_and_semicolon) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(key);
        if !normalized_is(&String::from_utf8_lossy(&key), "sessionid") {
            continue;
        }
        let value = String::from_utf8(form_decode(value)).map_err(|_| SessionIdError::NotText)?;
        add(&mut found, value)?;
    }
    Ok(found)
}

/// True for a header name some gateway reads as `Mcp-Session-Id`.
pub fn is_session_header(name: &str) -> bool {
    normalized_is(name, "mcpsessionid")
}

/// The one `Mcp-Session-Id` the headers carry, if any (repeats and `_` spellings considered).
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, SessionIdError> {
    let mut found = None;
    for (name, value) in headers {
        if !normalized_is(name.as_str(), "mcpsessionid") {
            continue;
        }
        let value = value.to_str().map_err(|_| SessionIdError::NotText)?;
        add(&mut found, value.to_string())?;
    }
    Ok(found)
}

/// The session id a request carries in its headers and query together.
pub fn of_request(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Option<String>, Option<String>), SessionIdError> {
    let header = from_headers(headers)?;
    let query = query.map(from_query).transpose()?.flatten();
    if let (Some(h), Some(q)) = (&header, &query) {
        if h != q {
            return Err(SessionIdError::Conflicting);
        }
    }
    Ok((header, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Option<String>, SessionIdError> {
        from_query(s)
    }

    #[test]
    fn every_spelling_of_the_key_is_a_session() {
        for query in [
            "sessionId=abc",
            "sessionid=abc",
            "SESSIONID=abc",
            "session_id=abc",
            "Session-Id=abc",
            "session%49d=abc",
            "session%49D=abc",
            "%73ession%69d=abc",
            "session%5Fid=abc",
            "x=1&sessionid=abc&y=2",
            "x=1;sessionid=abc",
            "sessionid=%61bc",
        ] {
            assert_eq!(q(query), Ok(Some("abc".into())), "{query}");
        }
        assert_eq!(q("sessionid=a+b"), Ok(Some("a b".into())));
        assert_eq!(q("sessionid"), Ok(Some(String::new())));
        assert_eq!(q("session=abc&id=1&sessionids=x"), Ok(None));
        assert_eq!(
            q("session%2549d=abc"),
            Ok(None),
            "decoded once, like gateways"
        );
        assert_eq!(q(""), Ok(None));
    }

    #[test]
    fn two_different_values_are_refused() {
        for query in [
            "sessionId=a&sessionid=b",
            "sessionid=a&session_id=b",
            "sessionid=a&sessionid=",
            // `;` splits for some parsers and not for others: two readings, two ids.
            "sessionid=a;x=1",
        ] {
            assert_eq!(q(query), Err(SessionIdError::Conflicting), "{query}");
        }
        assert_eq!(q("sessionid=a&SessionId=a"), Ok(Some("a".into())));
        assert_eq!(q("sessionid=%ff"), Err(SessionIdError::NotText));
        assert_eq!(q("sessionid=%zz"), Ok(Some("%zz".into())));
        assert_eq!(q("sessionid=%4"), Ok(Some("%4".into())));
    }

    #[test]
    fn headers_repeated_or_respelled_are_all_read() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h), Ok(None));
        h.append("mcp-session-id", "s1".parse().unwrap());
        assert_eq!(from_headers(&h), Ok(Some("s1".into())));
        h.append("mcp-session-id", "s1".parse().unwrap());
        assert_eq!(from_headers(&h), Ok(Some("s1".into())));
        h.append("mcp_session_id", "s2".parse().unwrap());
        assert_eq!(from_headers(&h), Err(SessionIdError::Conflicting));
        let mut h = HeaderMap::new();
        h.append(
            "mcp-session-id",
            http::HeaderValue::from_bytes(b"s\xff").unwrap(),
        );
        assert_eq!(from_headers(&h), Err(SessionIdError::NotText));
    }

    #[test]
    fn header_and_query_must_agree() {
        let mut h = HeaderMap::new();
        h.append("mcp-session-id", "s1".parse().unwrap());
        assert_eq!(
            of_request(&h, Some("sessionid=s1")),
            Ok((Some("s1".into()), Some("s1".into())))
        );
        assert_eq!(
            of_request(&h, Some("sessionid=s2")),
            Err(SessionIdError::Conflicting)
        );
    }
}
