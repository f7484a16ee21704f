//! A private X display (Xvfb), stopped on drop. Shared by the desktop app's tests and its
//! benchmark (benches/desktop.rs includes this file).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Display {
    child: Child,
    /// `:N`, for `DISPLAY`.
    pub name: String,
}

impl Display {
    pub fn start() -> Display {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x860x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start Xvfb (run `cargo xtask deps`)");
        // Xvfb writes the display number once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not say which display it took");
        Display {
            name: format!(":{number}"),
            child,
        }
    }
}

impl Display {
    /// Closes each top-level window titled `title` the way its close button does: the
    /// window manager's `WM_DELETE_WINDOW` message, which GTK turns into a delete event
    /// (Tauri's `CloseRequested`). Returns how many it asked to close.
    pub fn close_window(&self, title: &str) -> usize {
        use std::ffi::{CStr, CString};
        use x11_dl::xlib;
        let x = xlib::Xlib::open().expect("libX11");
        let name = CString::new(self.name.as_str()).unwrap();
        // SAFETY: Xlib calls on a display this function opened and closes; every pointer
        // Xlib returns is checked for null and freed with XFree once read.
        unsafe {
            let dpy = (x.XOpenDisplay)(name.as_ptr());
            assert!(!dpy.is_null(), "cannot open display {}", self.name);
            let root = (x.XDefaultRootWindow)(dpy);
            let (mut root_out, mut parent) = (0, 0);
            let mut children: *mut xlib::Window = std::ptr::null_mut();
            let mut count = 0;
            (x.XQueryTree)(
                dpy,
                root,
                &mut root_out,
                &mut parent,
                &mut children,
                &mut count,
            );
            let windows: Vec<xlib::Window> = if children.is_null() {
                Vec::new()
            } else {
                let list = std::slice::from_raw_parts(children, count as usize).to_vec();
                (x.XFree)(children.cast());
                list
            };
            let protocols = (x.XInternAtom)(dpy, c"WM_PROTOCOLS".as_ptr(), xlib::False);
            let delete = (x.XInternAtom)(dpy, c"WM_DELETE_WINDOW".as_ptr(), xlib::False);
            let mut closed = 0;
            for window in windows {
                let mut fetched: *mut std::ffi::c_char = std::ptr::null_mut();
                if (x.XFetchName)(dpy, window, &mut fetched) == 0 || fetched.is_null() {
                    continue;
                }
                let matches = CStr::from_ptr(fetched).to_bytes() == title.as_bytes();
                (x.XFree)(fetched.cast());
                if !matches {
                    continue;
                }
                let mut message: xlib::XClientMessageEvent = std::mem::zeroed();
                message.type_ = xlib::ClientMessage;
                message.window = window;
                message.message_type = protocols;
                message.format = 32;
                message.data.set_long(0, delete as std::ffi::c_long);
                message
                    .data
                    .set_long(1, xlib::CurrentTime as std::ffi::c_long);
                let mut event = xlib::XEvent {
                    client_message: message,
                };
                (x.XSendEvent)(dpy, window, xlib::False, xlib::NoEventMask, &mut event);
                closed += 1;
            }
            (x.XFlush)(dpy);
            (x.XCloseDisplay)(dpy);
            closed
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
