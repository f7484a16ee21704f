//! One-time pages on 127.0.0.1 that hand the browser to the provider.
//!
//! A browser is started with its URL on the command line, which every user of the machine
//! can read in /proc. The authorization URL carries `state`, `nonce` and the PKCE
//! challenge, and the end-session URL an `id_token_hint`; so the browser is given neither,
//! only the address of a [`Handoff`]: a random path on a loopback port, good for one
//! request, which is answered with a redirect (303) to the real URL.
//!
//! The end-session request is a GET too. RP-Initiated Logout allows a POST, which would
//! keep the hint out of the browser's history as well; but a cross-site POST carries no
//! `SameSite=Lax` cookie, so the provider could not tell which session to end
//! (node-oidc-provider 9 turns POST there off by default for that reason).
//!
//! Another program that read the address and asked first gets the page instead of the
//! browser; the browser then asks too, which is the second request: [`Handoff::stolen`]
//! resolves, and the sign-in stops (fail closed) rather than go on with parameters someone
//! else has seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use url::Url;

use super::loopback::{self, Page};
use crate::secret;

/// A one-time page, served until dropped.
pub struct Handoff {
    url: String,
    stolen: watch::Receiver<bool>,
    server: tokio::task::JoinHandle<()>,
}

/// Requests read at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 8;

impl Handoff {
    /// Serves a redirect to `next` once, at a new random address on 127.0.0.1.
    pub async fn serve(next: Url) -> Result<Handoff, loopback::Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| loopback::Error::Bind { port: 0, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| loopback::Error::Bind { port: 0, source })?
            .port();
        let path = format!(
            "/{}",
            secret::random(16)
                .map_err(|_| loopback::Error::Bind {
                    port,
                    source: std::io::Error::other("the OS random source failed"),
                })?
                .expose()
        );
        let (tell, stolen) = watch::channel(false);
        let shared = Arc::new(Shared {
            path: path.clone(),
            next,
            taken: AtomicBool::new(false),
            tell,
        });
        let server = tokio::spawn(serve(listener, shared));
        Ok(Handoff {
            url: format!("http://127.0.0.1:{port}{path}"),
            stolen,
            server,
        })
    }

    /// The address to give the browser. It is worth one request.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Resolves once the page has been asked for a second time: someone else had the
    /// address. Never resolves otherwise.
    pub async fn stolen(&mut self) {
        if self.stolen.wait_for(|stolen| *stolen).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Shared {
    path: String,
    next: Url,
    taken: AtomicBool,
    tell: watch::Sender<bool>,
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut accepting = loopback::Accepting::new(MAX_CONNECTIONS);
    loop {
        let (stream, permit) = accepting.next(&listener).await;
        let shared = shared.clone();
        tokio::spawn(async move {
            answer(stream, &shared).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) {
    let Some((path, _)) = loopback::read_with_timeout(&mut stream).await else {
        return;
    };
    if path != shared.path {
        return loopback::respond(
            &mut stream,
            404,
            &Page {
                ok: false,
                title: "Not found",
                message: "Nothing is here.",
            },
        )
        .await;
    }
    if shared.taken.swap(true, Ordering::SeqCst) {
        tracing::warn!("a one-time sign-in page was asked for twice; stopping the sign-in");
        let _ = shared.tell.send(true);
        return loopback::respond(
            &mut stream,
            410,
            &Page {
                ok: false,
                title: "Link already used",
                message: "This sign-in link was opened before, perhaps by another program on \
                          this computer. Lanyard stopped the sign-in to be safe: start it again.",
            },
        )
        .await;
    }
    loopback::redirect(&mut stream, &shared.next).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn get(url: &str) -> String {
        let url = Url::parse(url).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", url.port().unwrap()))
            .await
            .unwrap();
        s.write_all(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", url.path()).as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_page_is_served_once_and_a_second_ask_is_a_theft() {
        let target = Url::parse("https://id.example.com/authorize?state=s3cret&nonce=n").unwrap();
        let mut handoff = Handoff::serve(target.clone()).await.unwrap();
        assert!(!handoff.url().contains("s3cret"));
        let first = get(handoff.url()).await;
        assert!(first.starts_with("HTTP/1.1 303"), "{first}");
        assert!(first.contains(&format!("Location: {target}")), "{first}");
        assert!(first.contains("Cache-Control: no-store"), "{first}");
        // Another path on the port is nothing.
        let port = Url::parse(handoff.url()).unwrap().port().unwrap();
        let other = get(&format!("http://127.0.0.1:{port}/elsewhere")).await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let second = get(handoff.url()).await;
        assert!(second.starts_with("HTTP/1.1 410"), "{second}");
        assert!(!second.contains("s3cret"), "{second}");
        tokio::time::timeout(std::time::Duration::from_secs(5), handoff.stolen())
            .await
            .expect("the second ask is reported");
    }
}
