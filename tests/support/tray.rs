//! The desktop's side of the tray and of notifications, played by the test on the session
//! bus: a StatusNotifierWatcher (the panel the tray icon registers with) and a
//! notification server (what `notify-send` talks to). The app under test cannot tell them
//! from a real panel and notification daemon; the test reads the icon and menu the app
//! publishes, clicks its menu items, and sees every notification.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, Proxy, interface, message::Header};

const WAIT: Duration = Duration::from_secs(30);

/// A notification as the app sent it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The id the server gave it.
    pub id: u32,
    pub summary: String,
    pub body: String,
    /// Its actions: key and label, in turn.
    pub actions: Vec<String>,
}

struct Watcher {
    registered: mpsc::UnboundedSender<(String, String)>,
}

#[interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        #[zbus(header)] header: Header<'_>,
        service: &str,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let _ = self.registered.send((sender, service.to_owned()));
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        vec![]
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }
}

struct Notifications {
    seen: mpsc::UnboundedSender<Notification>,
    last_id: std::sync::atomic::AtomicU32,
}

#[interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    async fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into(), "actions".into()]
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = self
            .last_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let _ = self.seen.send(Notification {
            id,
            summary,
            body,
            actions,
        });
        id
    }

    /// The person clicked action `action_key` of notification `id`.
    #[zbus(signal)]
    async fn action_invoked(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    async fn close_notification(&self, _id: u32) {}

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "lanyard-tests".into(),
            "lanyard".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// The panel and the notification daemon, for as long as it lives.
pub struct Desktop {
    conn: Connection,
    registered: mpsc::UnboundedReceiver<(String, String)>,
    notifications: mpsc::UnboundedReceiver<Notification>,
}

impl Desktop {
    pub async fn start() -> Desktop {
        let (registered_tx, registered) = mpsc::unbounded_channel();
        let (seen_tx, notifications) = mpsc::unbounded_channel();
        let conn = zbus::connection::Builder::session()
            .unwrap()
            .name("org.kde.StatusNotifierWatcher")
            .unwrap()
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at(
                "/StatusNotifierWatcher",
                Watcher {
                    registered: registered_tx,
                },
            )
            .unwrap()
            .serve_at(
                "/org/freedesktop/Notifications",
                Notifications {
                    seen: seen_tx,
                    last_id: std::sync::atomic::AtomicU32::new(0),
                },
            )
            .unwrap()
            .build()
            .await
            .expect("the test owns the panel's and the notification daemon's bus names");
        Desktop {
            conn,
            registered,
            notifications,
        }
    }

    /// The tray icon, once the app has registered it.
    pub async fn tray(&mut self) -> Tray {
        let (sender, service) = tokio::time::timeout(WAIT, self.registered.recv())
            .await
            .expect("the app registered no tray icon")
            .unwrap();
        // A registration names either an object path on the sender or a bus name.
        let (dest, path) = if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        // Not cached: the item announces a new icon with `NewIcon`, not PropertiesChanged.
        let item: Proxy<'static> = zbus::proxy::Builder::new(&self.conn)
            .destination(dest.clone())
            .unwrap()
            .path(path)
            .unwrap()
            .interface("org.kde.StatusNotifierItem")
            .unwrap()
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        let menu: OwnedObjectPath = item.get_property("Menu").await.unwrap();
        let menu = Proxy::new(&self.conn, dest, menu, "com.canonical.dbusmenu")
            .await
            .unwrap();
        Tray { item, menu }
    }

    /// The next notification the app sends.
    pub async fn notification(&mut self) -> Notification {
        tokio::time::timeout(WAIT, self.notifications.recv())
            .await
            .expect("the app sent no notification")
            .unwrap()
    }

    /// The person clicks `action` (its key) on notification `id`, as a notification
    /// server reports it.
    pub async fn click(&self, id: u32, action: &str) {
        let interface = self
            .conn
            .object_server()
            .interface::<_, Notifications>("/org/freedesktop/Notifications")
            .await
            .unwrap();
        Notifications::action_invoked(interface.signal_emitter(), id, action)
            .await
            .unwrap();
    }

    /// A notification already sent, if any.
    pub fn sent(&mut self) -> Option<Notification> {
        self.notifications.try_recv().ok()
    }
}

/// The app's tray icon: its item and its menu, as a panel sees them.
pub struct Tray {
    item: Proxy<'static>,
    menu: Proxy<'static>,
}

impl Tray {
    /// The pixels of the icon shown, as RGBA rows (the icon is published as a PNG file);
    /// `None` while the app is replacing it (the old file is gone, `NewIcon` is to come).
    pub async fn icon(&self) -> Option<Vec<u8>> {
        let name: String = self.item.get_property("IconName").await.unwrap();
        let dir: String = self
            .item
            .get_property("IconThemePath")
            .await
            .unwrap_or_default();
        let mut path = std::path::PathBuf::from(&name);
        if !path.is_absolute() {
            path = std::path::Path::new(&dir).join(format!("{name}.png"));
        }
        match std::fs::read(&path) {
            Ok(bytes) => Some(decode(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("icon {path:?}: {e}"),
        }
    }

    /// The menu's items: (id, label), in order; separators have no label.
    pub async fn menu(&self) -> Vec<(i32, String)> {
        let reply = self
            .menu
            .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
            .await
            .unwrap();
        let (_revision, Layout(_root, _, children)): (u32, Layout) =
            reply.body().deserialize().unwrap();
        let mut items = vec![];
        for child in &children {
            walk(child, &mut items);
        }
        items
    }

    /// Waits until the menu holds an item whose label contains `label`, and returns its id.
    pub async fn wait_for_item(&self, label: &str) -> i32 {
        let mut updates = self.menu.receive_signal("LayoutUpdated").await.unwrap();
        let mut icons = self.item.receive_signal("NewIcon").await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let items = self.menu().await;
            if let Some((id, _)) = items.iter().find(|(_, l)| l.contains(label)) {
                return *id;
            }
            // The app may replace the whole menu (a new object path) rather than update it.
            tokio::select! {
                _ = updates.next() => {}
                _ = icons.next() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    panic!("the tray menu never held {label:?}: {items:?}")
                }
            }
        }
    }

    /// Waits until the icon shows `pixels`.
    pub async fn wait_for_icon(&self, pixels: &[u8], what: &str) {
        let mut icons = self.item.receive_signal("NewIcon").await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.icon().await.as_deref() != Some(pixels) {
            tokio::select! {
                _ = icons.next() => {}
                _ = tokio::time::sleep_until(deadline) => panic!("the tray icon never showed {what}"),
            }
        }
    }

    /// Clicks the menu item labelled with `label`, as a person would in the panel.
    pub async fn click(&self, label: &str) {
        let id = self.wait_for_item(label).await;
        let now = 0u32;
        self.menu
            .call_method("Event", &(id, "clicked", Value::from(0i32), now))
            .await
            .unwrap();
    }
}

/// A dbusmenu node: its id, its properties and its children (each a variant holding a node).
#[derive(serde::Deserialize, zbus::zvariant::Type)]
struct Layout(
    i32,
    #[allow(dead_code)] HashMap<String, OwnedValue>,
    Vec<OwnedValue>,
);

fn walk(node: &Value<'_>, out: &mut Vec<(i32, String)>) {
    if let Value::Value(inner) = node {
        return walk(inner, out);
    }
    let Value::Structure(node) = node else { return };
    let [Value::I32(id), Value::Dict(props), Value::Array(children)] = node.fields() else {
        return;
    };
    let label: Option<String> = props.get(&"label").ok().flatten();
    out.push((*id, label.unwrap_or_default()));
    for child in children.iter() {
        walk(child, out);
    }
}

/// The pixels of a PNG as 8-bit RGBA, whatever its colour type.
pub fn decode(png_bytes: &[u8]) -> Vec<u8> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => unreachable!("EXPAND turns a palette into RGB(A)"),
    }
}
