//! The loopback redirect listener of RFC 8252 section 7.3.
//!
//! It binds `127.0.0.1` only (never a wildcard address, never `localhost`, whose resolution
//! another program may influence) and waits for the one request that carries the `state`
//! of the sign-in in progress. Anything else — another path, a missing or wrong `state`,
//! garbage — is answered with a short error page and does not end the wait, so a forged
//! callback neither ends nor hijacks a sign-in, and its code is never redeemed. Each
//! connection is read in its own task with a time limit, so one that stalls delays nothing.
//! GET (query) and POST (`application/x-www-form-urlencoded`, for `form_post`) both work.
//! For `response_mode=fragment` the response never reaches a server (browsers keep the
//! fragment), so a bare GET of the path is answered with a relay page whose one script
//! posts the fragment's parameters back; the POST is then checked like any other.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Params;
use crate::secret::Secret;

/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections read at once; more are closed as they come (a browser needs one or two).
const MAX_CONNECTIONS: usize = 32;
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on 127.0.0.1:{port} for the browser's redirect: {source}{}", if *port != 0 { "; another program holds the port (the account's redirect is fixed to it)" } else { "" })]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("no sign-in arrived from the browser within {} s; run the command again (use --no-browser to open the link yourself)", .0.as_secs())]
    Timeout(Duration),
}

pub struct Listener {
    listener: TcpListener,
    port: u16,
}

/// The request that matched, with its connection, which is still waiting for a page.
pub struct Callback {
    pub params: Params,
    stream: TcpStream,
}

/// A page for the browser tab.
pub struct Page<'a> {
    pub ok: bool,
    pub title: &'a str,
    pub message: &'a str,
}

impl Listener {
    pub async fn bind(port: u16) -> Result<Listener, Error> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| Error::Bind { port, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Bind { port, source })?
            .port();
        Ok(Listener { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH`: the IP literal, as RFC 8252 section 7.3 recommends.
    pub fn uri(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for a request to `path` whose `state` matches, for at most `timeout`.
    /// `relay_fragment` serves the fragment relay page on a bare GET of `path`.
    pub async fn wait(
        &self,
        path: &str,
        state: &Secret,
        timeout: Duration,
        relay_fragment: bool,
    ) -> Result<Callback, Error> {
        let (tx, mut rx) = mpsc::channel::<(Request, TcpStream)>(16);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut accepting = Accepting::new(MAX_CONNECTIONS);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err(Error::Timeout(timeout)),
                (stream, permit) = accepting.next(&self.listener) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut stream = stream;
                        match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
                            Ok(Some(request)) => { let _ = tx.send((request, stream)).await; }
                            _ => respond(&mut stream, 400, &Page { ok: false, title: "Bad request",
                                message: "Lanyard could not read this request." }).await,
                        }
                        drop(permit);
                    });
                }
                Some((request, mut stream)) = rx.recv() => {
                    if request.path != path {
                        respond(&mut stream, 404, &Page { ok: false, title: "Not found",
                            message: "Nothing is here. Lanyard is waiting for your sign-in." }).await;
                        continue;
                    }
                    if relay_fragment && request.params.0.is_empty() {
                        relay(&mut stream, path).await;
                        continue;
                    }
                    if !request.params.get("state").is_some_and(|s| state.matches(s)) {
                        tracing::warn!("ignored a redirect whose state does not belong to this sign-in");
                        respond(&mut stream, 400, &Page { ok: false, title: "Not this sign-in",
                            message: "This link does not belong to the sign-in Lanyard is waiting for. \
                                      Close this tab and go back to the sign-in you started." }).await;
                        continue;
                    }
                    return Ok(Callback { params: request.params, stream });
                }
            }
        }
    }
}

impl Callback {
    /// Answers the browser tab and closes the connection.
    pub async fn finish(mut self, page: &Page<'_>) {
        respond(&mut self.stream, if page.ok { 200 } else { 400 }, page).await;
    }
}

struct Request {
    path: String,
    params: Params,
}

/// Accepting on a loopback port, the same way for the redirect listener and the one-time
/// page: at most `max` connections being read at once (more are closed as they come, so
/// connections that send nothing cannot pile up), and a pause, longer each time, after a
/// failed accept (out of descriptors and the like) rather than a spin.
pub(super) struct Accepting {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    backoff: Duration,
}

impl Accepting {
    pub(super) fn new(max: usize) -> Accepting {
        Accepting {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(max)),
            backoff: Duration::from_millis(50),
        }
    }

    /// The next connection, with its slot (held until the connection is done with).
    /// Cancel-safe: a caller may select it against a deadline.
    pub(super) async fn next(
        &mut self,
        listener: &TcpListener,
    ) -> (TcpStream, tokio::sync::OwnedSemaphorePermit) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    self.backoff = Duration::from_millis(50);
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a loopback listener could not accept");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return (stream, permit);
            }
        }
    }
}

/// One request's path and parameters, read within [`READ_TIMEOUT`].
pub(super) async fn read_with_timeout(stream: &mut TcpStream) -> Option<(String, Params)> {
    let request = tokio::time::timeout(READ_TIMEOUT, read_request(stream))
        .await
        .ok()??;
    Some((request.path, request.params))
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(2048);
    let head_len = loop {
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head_len]).ok()?;
    let method = req.method?.to_owned();
    let target = req.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.to_owned();
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if method == "POST" {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
        };
        let length: usize = header("content-length")?.trim().parse().ok()?;
        let form = header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if length > MAX_BODY {
            return None;
        }
        let mut body = buf[head_len..].to_vec();
        while body.len() < length {
            let mut chunk = vec![0u8; length - body.len()];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        if form {
            params.extend(url::form_urlencoded::parse(&body[..length]).into_owned());
        }
    } else if method != "GET" {
        return None;
    }
    Some(Request {
        path,
        params: Params(params),
    })
}

pub(super) async fn respond(stream: &mut TcpStream, status: u16, page: &Page<'_>) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        410 => "Gone",
        _ => "Bad Request",
    };
    let body = render(page);
    // no-referrer: the page's URL carries the authorization code.
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A 303 to `url`: the browser's next request is a GET of it.
pub(super) async fn redirect(stream: &mut TcpStream, url: &url::Url) {
    let head = format!(
        "HTTP/1.1 303 See Other\r\nLocation: {url}\r\nContent-Length: 0\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The fragment relay: reads `location.hash` and posts its parameters to `path`. The
/// CSP allows exactly this script, by its hash, and nothing else.
async fn relay(stream: &mut TcpStream, path: &str) {
    use base64::Engine as _;
    let script = format!(
        "const p=new URLSearchParams(location.hash.slice(1));history.replaceState(null,'',location.pathname);\
         const f=document.createElement('form');f.method='post';f.action='{path}';\
         for(const[k,v]of p){{const i=document.createElement('input');i.type='hidden';i.name=k;i.value=v;f.appendChild(i)}}\
         document.body.appendChild(f);f.submit();"
    );
    let hash = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        script.as_bytes(),
    ));
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Signing in · Lanyard</title>\
         <body id=\"lanyard-relay\"><p>Finishing the sign-in…</p><script>{script}</script></body></html>"
    );
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'; script-src 'sha256-{hash}'; form-action 'self'\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn render(page: &Page<'_>) -> String {
    let (mark, colour) = if page.ok {
        ("✓", "#1a7f37")
    } else {
        ("!", "#b42318")
    };
    format!(
        r#"<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title} · Lanyard</title>
<style>body{{font:18px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;color:#1f2328;background:#f6f8fa}}
main{{max-width:28rem;padding:2rem;text-align:center}}b{{display:inline-grid;place-items:center;width:3rem;height:3rem;border-radius:50%;color:#fff;background:{colour};font-size:1.6rem}}
@media(prefers-color-scheme:dark){{body{{color:#e6edf3;background:#0d1117}}}}</style>
<main><b aria-hidden="true">{mark}</b><h1>{title}</h1><p>{message}</p></main></html>"#,
        title = escape(page.title),
        message = escape(page.message),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(port: u16, raw: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn ignores_forgeries_and_returns_the_real_callback() {
        let listener = Listener::bind(0).await.unwrap();
        let port = listener.port();
        let state = Secret::new("right-state");
        let wait = listener.wait("/callback", &state, Duration::from_secs(10), false);
        let client = async {
            // A connection that never sends anything must not block the others.
            let _idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let r = send(
                port,
                "GET /other?state=right-state&code=x HTTP/1.1\r\nHost: a\r\n\r\n",
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 404"), "{r}");
            let r = send(
                port,
                "GET /callback?state=wrong&code=forged HTTP/1.1\r\nHost: a\r\n\r\n",
            )
            .await;
            assert!(
                r.starts_with("HTTP/1.1 400") && r.contains("does not belong"),
                "{r}"
            );
            let r = send(
                port,
                "GET /callback?code=forged HTTP/1.1\r\nHost: a\r\n\r\n",
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 400"), "{r}");
            let body = "state=right-state&code=real";
            let post = format!(
                "POST /callback HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            send(port, &post).await
        };
        let (callback, answer) = tokio::join!(
            async {
                let cb = wait.await.unwrap();
                assert_eq!(cb.params.get("code"), Some("real"));
                cb.finish(&Page {
                    ok: true,
                    title: "Signed in",
                    message: "You can close <this> tab.",
                })
                .await;
            },
            client
        );
        let () = callback;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("You can close &lt;this&gt; tab."));
        assert!(answer.contains("Referrer-Policy: no-referrer"));
    }

    #[tokio::test]
    async fn relays_a_fragment_when_asked() {
        let listener = Listener::bind(0).await.unwrap();
        let port = listener.port();
        let state = Secret::new("st");
        let wait = listener.wait("/callback", &state, Duration::from_secs(10), true);
        let client = async {
            let page = send(port, "GET /callback HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(
                page.contains("id=\"lanyard-relay\"") && page.contains("script-src 'sha256-"),
                "{page}"
            );
            let body = "id_token=x.y.z&state=st";
            send(port, &format!(
                "POST /callback HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ))
            .await
        };
        let (callback, _) = tokio::join!(
            async {
                let cb = wait.await.unwrap();
                assert_eq!(cb.params.get("id_token"), Some("x.y.z"));
                cb.finish(&Page {
                    ok: true,
                    title: "ok",
                    message: "ok",
                })
                .await;
            },
            client
        );
        let () = callback;
    }

    /// Connections that send nothing are read at most MAX_CONNECTIONS at a time: the next
    /// one is closed at once rather than held.
    #[tokio::test]
    async fn idle_connections_beyond_the_cap_are_closed_at_once() {
        let listener = Listener::bind(0).await.unwrap();
        let port = listener.port();
        let state = Secret::new("s");
        let wait = listener.wait("/callback", &state, Duration::from_secs(60), false);
        let client = async {
            let mut idle = Vec::new();
            for _ in 0..MAX_CONNECTIONS {
                idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
            }
            let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
                .await
                .expect("the connection over the cap is closed at once");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            drop(idle);
        };
        tokio::select! {
            _ = wait => panic!("the wait ended"),
            () = client => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_timeout() {
        let listener = Listener::bind(0).await.unwrap();
        let err = listener
            .wait(
                "/callback",
                &Secret::new("s"),
                Duration::from_secs(300),
                false,
            )
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("no sign-in arrived from the browser within 300 s")
        );
    }
}
