//! The seat's idle time on a Linux desktop: the compositor's idle monitor on D-Bus, or
//! X11's screen-saver extension: [`idle_probe`] picks the one this session has.

use std::sync::Arc;

use crate::platform::IdleProbe;

/// The seat's idle probe on this desktop, if any.
///
/// In a Wayland session only the compositor sees all input: its D-Bus idle monitor
/// (GNOME's Mutter, or `org.freedesktop.ScreenSaver` on KDE and others) is asked, never
/// XWayland, which sees only X clients' input and would call a player busy in a Wayland
/// game idle. On X11, the screen-saver extension, else the D-Bus monitors.
pub fn idle_probe() -> Option<Arc<dyn IdleProbe>> {
    let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland");
    let dbus = || dbus::DbusIdle::session().map(|p| Arc::new(p) as Arc<dyn IdleProbe>);
    if wayland {
        return dbus();
    }
    x11::X11Idle::open()
        .map(|p| Arc::new(p) as Arc<dyn IdleProbe>)
        .or_else(dbus)
}

/// The seat's idle time from X11's screen-saver extension (libXss, loaded at run time).
pub mod x11 {
    use std::time::Duration;

    use x11_dl::{xlib, xss};

    pub struct X11Idle {
        xlib: xlib::Xlib,
        xss: xss::Xss,
        display: std::sync::Mutex<usize>,
    }

    // SAFETY: the display pointer is used only under the mutex, from one thread at a time.
    unsafe impl Send for X11Idle {}
    unsafe impl Sync for X11Idle {}

    impl X11Idle {
        /// `None` without an X display or libXss.
        pub fn open() -> Option<X11Idle> {
            let xlib = xlib::Xlib::open().ok()?;
            let xss = xss::Xss::open().ok()?;
            // SAFETY: XOpenDisplay with NULL opens $DISPLAY, or returns NULL.
            let display = unsafe { (xlib.XOpenDisplay)(std::ptr::null()) };
            if display.is_null() {
                return None;
            }
            let (mut event, mut error) = (0, 0);
            // SAFETY: a valid display and two out-parameters.
            if unsafe { (xss.XScreenSaverQueryExtension)(display, &mut event, &mut error) } == 0 {
                // SAFETY: the display was opened above.
                unsafe { (xlib.XCloseDisplay)(display) };
                return None;
            }
            Some(X11Idle {
                xlib,
                xss,
                display: std::sync::Mutex::new(display as usize),
            })
        }
    }

    impl crate::platform::IdleProbe for X11Idle {
        fn idle(&self) -> Option<Duration> {
            let display = self.display.lock().unwrap_or_else(|e| e.into_inner());
            let display = *display as *mut xlib::Display;
            // SAFETY: the display is open; the info struct is allocated by libXss and
            // freed with XFree below.
            unsafe {
                let info = (self.xss.XScreenSaverAllocInfo)();
                if info.is_null() {
                    return None;
                }
                let root = (self.xlib.XDefaultRootWindow)(display);
                let ok = (self.xss.XScreenSaverQueryInfo)(display, root, info);
                let idle = (*info).idle;
                (self.xlib.XFree)(info.cast());
                (ok != 0).then(|| Duration::from_millis(idle))
            }
        }
    }
}

/// The seat's idle time from the desktop's idle monitor on the session bus: GNOME's
/// `org.gnome.Mutter.IdleMonitor` (X11 and Wayland), or `GetSessionIdleTime` of
/// `org.freedesktop.ScreenSaver` (KDE and others).
pub mod dbus {
    use std::time::Duration;

    use zbus::blocking::Connection;

    /// The seat's clock asks at its deadlines only; a monitor that hangs must not hold it.
    const TIMEOUT: Duration = Duration::from_millis(500);

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Monitor {
        Mutter,
        ScreenSaver,
    }

    pub struct DbusIdle {
        connection: Connection,
        monitor: Monitor,
    }

    impl DbusIdle {
        /// The first monitor on the session bus that answers; `None` without one.
        pub fn session() -> Option<DbusIdle> {
            let connection = zbus::blocking::connection::Builder::session()
                .ok()?
                .method_timeout(TIMEOUT)
                .build()
                .ok()?;
            DbusIdle::on(connection)
        }

        /// The first monitor that answers on `connection`.
        pub fn on(connection: Connection) -> Option<DbusIdle> {
            [Monitor::Mutter, Monitor::ScreenSaver]
                .into_iter()
                .map(|monitor| DbusIdle {
                    connection: connection.clone(),
                    monitor,
                })
                .find(|probe| probe.ask().is_ok())
        }

        fn ask(&self) -> zbus::Result<Duration> {
            match self.monitor {
                Monitor::Mutter => {
                    let reply = self.connection.call_method(
                        Some("org.gnome.Mutter.IdleMonitor"),
                        "/org/gnome/Mutter/IdleMonitor/Core",
                        Some("org.gnome.Mutter.IdleMonitor"),
                        "GetIdletime",
                        &(),
                    )?;
                    Ok(Duration::from_millis(reply.body().deserialize::<u64>()?))
                }
                Monitor::ScreenSaver => {
                    let reply = self.connection.call_method(
                        Some("org.freedesktop.ScreenSaver"),
                        "/org/freedesktop/ScreenSaver",
                        Some("org.freedesktop.ScreenSaver"),
                        "GetSessionIdleTime",
                        &(),
                    )?;
                    Ok(Duration::from_secs(
                        reply.body().deserialize::<u32>()?.into(),
                    ))
                }
            }
        }
    }

    impl crate::platform::IdleProbe for DbusIdle {
        fn idle(&self) -> Option<Duration> {
            match self.ask() {
                Ok(idle) => Some(idle),
                Err(e) => {
                    tracing::debug!(error = %e, monitor = ?self.monitor, "idle monitor");
                    None
                }
            }
        }
    }
}
