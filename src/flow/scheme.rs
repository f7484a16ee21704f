//! The private-use URI scheme redirect of RFC 8252 section 7.1 (`dev.lanyard:/callback`).
//!
//! The operating system hands such a URL to the app registered for the scheme (the
//! desktop app, through its deep-link handler), not to a listener of ours; the app puts
//! it in the [`Inbox`], which passes it to the sign-in waiting for its `state`. A URL
//! whose `state` no sign-in is waiting for — a stale link, a forgery, a cold start — is
//! refused and ends nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Params;

/// Sign-ins waiting for their redirect, by `state`.
#[derive(Default)]
pub struct Inbox {
    waiting: Mutex<HashMap<String, oneshot::Sender<Params>>>,
}

/// A sign-in's place in the inbox; leaving it (dropped) stops waiting.
pub struct Waiting {
    inbox: Arc<Inbox>,
    state: String,
    receiver: oneshot::Receiver<Params>,
}

impl Waiting {
    /// The redirect's parameters, when the URL arrives.
    pub async fn recv(&mut self) -> Option<Params> {
        (&mut self.receiver).await.ok()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.inbox.lock().remove(&self.state);
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    /// The text is not repeated: a mangled redirect may still carry a code.
    #[error("the link is not a URL")]
    NotUrl,
    #[error("the link carries no `state`")]
    NoState,
    #[error(
        "no sign-in is waiting for this link (it is old, or was not started here); start the sign-in again"
    )]
    Unexpected,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Params>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the redirect that carries `state`.
    pub fn expect(self: &Arc<Inbox>, state: &str) -> Waiting {
        let (tx, receiver) = oneshot::channel();
        self.lock().insert(state.to_owned(), tx);
        Waiting {
            inbox: self.clone(),
            state: state.to_owned(),
            receiver,
        }
    }

    /// Delivers a URL the OS handed over: its query's (or fragment's) parameters go to
    /// the sign-in waiting for its `state`.
    pub fn deliver(&self, url: &str) -> Result<(), Refused> {
        let parsed = url::Url::parse(url).map_err(|_| Refused::NotUrl)?;
        let params = Params::from_url(&parsed);
        let state = params.get("state").ok_or(Refused::NoState)?.to_owned();
        let sender = self.lock().remove(&state).ok_or(Refused::Unexpected)?;
        sender.send(params).map_err(|_| Refused::Unexpected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_reaches_the_sign_in_of_its_state_only() {
        let inbox = Arc::new(Inbox::default());
        let mut waiting = inbox.expect("s1");
        assert_eq!(
            inbox.deliver("dev.lanyard:/callback?code=c&state=s2"),
            Err(Refused::Unexpected)
        );
        assert_eq!(
            inbox.deliver("dev.lanyard:/callback?code=c"),
            Err(Refused::NoState)
        );
        assert_eq!(inbox.deliver("not a url"), Err(Refused::NotUrl));
        inbox
            .deliver("dev.lanyard:/callback?code=c&state=s1")
            .unwrap();
        let params = waiting.recv().await.unwrap();
        assert_eq!(params.get("code"), Some("c"));
        // Used once: the same link again is refused.
        assert_eq!(
            inbox.deliver("dev.lanyard:/callback?code=c&state=s1"),
            Err(Refused::Unexpected)
        );
    }

    #[test]
    fn a_sign_in_that_gives_up_leaves_the_inbox() {
        let inbox = Arc::new(Inbox::default());
        drop(inbox.expect("s1"));
        assert_eq!(
            inbox.deliver("dev.lanyard:/cb?state=s1"),
            Err(Refused::Unexpected)
        );
        let _w = inbox.expect("s2");
        assert_eq!(inbox.deliver("dev.lanyard:/cb#state=s2&code=x"), Ok(()));
    }
}
