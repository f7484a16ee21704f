//! The registry, as far as Lanyard reads and writes it: the Run value that starts the app
//! at sign-in, and the kiosk policy that Group Policy or a center's tooling deploys under
//! `HKLM\SOFTWARE\Policies\Lanyard`, read as the TOML table the kiosk file would hold.

use std::ffi::OsStr;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    HKEY, KEY_READ, KEY_WOW64_64KEY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ, RegCloseKey,
    RegDeleteKeyValueW, RegEnumKeyExW, RegEnumValueW, RegOpenKeyExW, RegSetKeyValueW,
};

pub use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};

use super::wide;

/// A value as the registry holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// REG_SZ or REG_EXPAND_SZ (not expanded).
    Text(String),
    Number(u32),
    /// REG_MULTI_SZ.
    List(Vec<String>),
}

/// An open key, closed on drop.
pub struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key this process opened.
        unsafe { RegCloseKey(self.0) };
    }
}

fn check(status: u32) -> std::io::Result<()> {
    if status == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(status as i32))
    }
}

impl Key {
    /// `root\path` for reading, in the 64-bit view; `None` when it does not exist.
    pub fn open(root: HKEY, path: &str) -> std::io::Result<Option<Key>> {
        let name = wide(OsStr::new(path));
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: a NUL-terminated name and a place for the key.
        let status =
            unsafe { RegOpenKeyExW(root, name.as_ptr(), 0, KEY_READ | KEY_WOW64_64KEY, &mut key) };
        if status == ERROR_FILE_NOT_FOUND {
            return Ok(None);
        }
        check(status)?;
        Ok(Some(Key(key)))
    }

    /// The key's values, by name, of the types Lanyard reads; others are skipped.
    pub fn values(&self) -> std::io::Result<Vec<(String, Value)>> {
        let mut values = Vec::new();
        for index in 0.. {
            let mut name = vec![0u16; 16_384];
            let mut name_len = name.len() as u32;
            let mut kind = 0u32;
            let mut data = vec![0u8; 64 * 1024];
            let mut data_len = data.len() as u32;
            // SAFETY: buffers of the given lengths; the lengths are updated.
            let status = unsafe {
                RegEnumValueW(
                    self.0,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    std::ptr::null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut data_len,
                )
            };
            if status == ERROR_NO_MORE_ITEMS {
                break;
            }
            check(status)?;
            let name = String::from_utf16_lossy(&name[..name_len as usize]);
            data.truncate(data_len as usize);
            if let Some(value) = decode(kind, &data) {
                values.push((name, value));
            }
        }
        Ok(values)
    }

    /// The names of the key's subkeys.
    pub fn subkeys(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for index in 0.. {
            let mut name = vec![0u16; 256];
            let mut len = name.len() as u32;
            // SAFETY: a buffer of `len` UTF-16 units; no class or time asked for.
            let status = unsafe {
                RegEnumKeyExW(
                    self.0,
                    index,
                    name.as_mut_ptr(),
                    &mut len,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if status == ERROR_NO_MORE_ITEMS {
                break;
            }
            check(status)?;
            names.push(String::from_utf16_lossy(&name[..len as usize]));
        }
        Ok(names)
    }

    pub fn subkey(&self, name: &str) -> std::io::Result<Option<Key>> {
        Key::open(self.0, name)
    }
}

fn decode(kind: u32, data: &[u8]) -> Option<Value> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    match kind {
        REG_SZ | REG_EXPAND_SZ => {
            let end = units.iter().position(|u| *u == 0).unwrap_or(units.len());
            Some(Value::Text(String::from_utf16_lossy(&units[..end])))
        }
        REG_DWORD => Some(Value::Number(u32::from_le_bytes(
            data.get(..4)?.try_into().ok()?,
        ))),
        REG_MULTI_SZ => Some(Value::List(
            units
                .split(|u| *u == 0)
                .filter(|s| !s.is_empty())
                .map(String::from_utf16_lossy)
                .collect(),
        )),
        _ => None,
    }
}

/// Writes a REG_SZ value, making the key if needed.
pub fn set_text(root: HKEY, path: &str, name: &str, value: &str) -> std::io::Result<()> {
    let (path, name, value) = (
        wide(OsStr::new(path)),
        wide(OsStr::new(name)),
        wide(OsStr::new(value)),
    );
    // SAFETY: NUL-terminated strings; the data is the value with its NUL, in bytes.
    check(unsafe {
        RegSetKeyValueW(
            root,
            path.as_ptr(),
            name.as_ptr(),
            REG_SZ,
            value.as_ptr().cast(),
            (value.len() * 2) as u32,
        )
    })
}

/// Reads a REG_SZ value; `None` when the key or the value is missing.
pub fn text(root: HKEY, path: &str, name: &str) -> Option<String> {
    let key = Key::open(root, path).ok()??;
    key.values()
        .ok()?
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| match v {
            Value::Text(text) => Some(text),
            _ => None,
        })
}

/// Deletes a value; a missing key or value is not an error.
pub fn delete(root: HKEY, path: &str, name: &str) -> std::io::Result<()> {
    let (path, name) = (wide(OsStr::new(path)), wide(OsStr::new(name)));
    // SAFETY: NUL-terminated strings.
    match unsafe { RegDeleteKeyValueW(root, path.as_ptr(), name.as_ptr()) } {
        ERROR_FILE_NOT_FOUND => Ok(()),
        status => check(status),
    }
}

/// The kiosk policy under `root\path` as the TOML table a kiosk file would hold, or
/// `None` without the key. Its values are the `[kiosk]` keys; its subkey `Accounts` holds
/// one subkey per account, whose values are the account's keys (and whose subkey
/// `extra_params` holds those). REG_SZ is a string, REG_MULTI_SZ a list, REG_DWORD a
/// number, or for the yes-or-no keys (`device_flow`, `introspect`, `dpop`) 0 or 1.
pub fn policy(root: HKEY, path: &str) -> std::io::Result<Option<toml::Table>> {
    let Some(key) = Key::open(root, path)? else {
        return Ok(None);
    };
    let mut table = toml::Table::new();
    table.insert("kiosk".into(), toml::Value::Table(as_table(&key)?));
    let Some(accounts_key) = key.subkey("Accounts")? else {
        return Ok(Some(table));
    };
    let mut accounts = toml::Table::new();
    for name in accounts_key.subkeys()? {
        let Some(account_key) = accounts_key.subkey(&name)? else {
            continue;
        };
        let mut account = as_table(&account_key)?;
        if let Some(extra) = account_key.subkey("extra_params")? {
            account.insert("extra_params".into(), toml::Value::Table(as_table(&extra)?));
        }
        accounts.insert(name, toml::Value::Table(account));
    }
    table.insert("accounts".into(), toml::Value::Table(accounts));
    Ok(Some(table))
}

/// The keys whose REG_DWORD is a yes or no.
const YES_OR_NO: &[&str] = &["device_flow", "introspect", "dpop"];

fn as_table(key: &Key) -> std::io::Result<toml::Table> {
    Ok(key
        .values()?
        .into_iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| {
            let value = match value {
                Value::Text(text) => toml::Value::String(text),
                Value::Number(n) if YES_OR_NO.contains(&name.as_str()) => {
                    toml::Value::Boolean(n != 0)
                }
                Value::Number(n) => toml::Value::Integer(n.into()),
                Value::List(items) => {
                    toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
                }
            };
            (name, value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of every type, written as Group Policy writes them, read back as the
    /// kiosk file's table.
    #[test]
    fn a_policy_key_reads_as_the_kiosk_files_table() {
        use windows_sys::Win32::System::Registry::RegDeleteTreeW;
        let path = format!(r"Software\Lanyard-test-{}", std::process::id());
        let set_raw = |sub: &str, name: &str, kind: u32, data: &[u8]| {
            let (sub, name) = (wide(OsStr::new(sub)), wide(OsStr::new(name)));
            // SAFETY: NUL-terminated strings and `data.len()` bytes.
            check(unsafe {
                RegSetKeyValueW(
                    HKEY_CURRENT_USER,
                    sub.as_ptr(),
                    name.as_ptr(),
                    kind,
                    data.as_ptr().cast(),
                    data.len() as u32,
                )
            })
            .unwrap();
        };
        let multi = |items: &[&str]| -> Vec<u8> {
            let mut units: Vec<u16> = Vec::new();
            for item in items {
                units.extend(item.encode_utf16());
                units.push(0);
            }
            units.push(0);
            units.iter().flat_map(|u| u.to_le_bytes()).collect()
        };
        set_text(HKEY_CURRENT_USER, &path, "idle_timeout", "10m").unwrap();
        set_raw(&path, "max_session", REG_DWORD, &3600u32.to_le_bytes());
        set_raw(&path, "device_flow", REG_DWORD, &0u32.to_le_bytes());
        let apps = [r"C:\Partner\launcher.exe", r"C:\Center\seat agent.exe"];
        set_raw(&path, "allowed_apps", REG_MULTI_SZ, &multi(&apps));
        let work = format!(r"{path}\Accounts\work");
        set_text(HKEY_CURRENT_USER, &work, "issuer", "https://id.example.com").unwrap();
        set_text(HKEY_CURRENT_USER, &work, "client_id", "seat").unwrap();
        set_text(
            HKEY_CURRENT_USER,
            &format!(r"{work}\extra_params"),
            "center",
            "42",
        )
        .unwrap();

        let table = policy(HKEY_CURRENT_USER, &path).unwrap().unwrap();
        let expected: toml::Table = toml::from_str(
            r#"
            [kiosk]
            idle_timeout = "10m"
            max_session = 3600
            device_flow = false
            allowed_apps = ['C:\Partner\launcher.exe', 'C:\Center\seat agent.exe']
            [accounts.work]
            issuer = "https://id.example.com"
            client_id = "seat"
            extra_params = { center = "42" }
            "#,
        )
        .unwrap();
        assert_eq!(table, expected);
        assert_eq!(
            text(HKEY_CURRENT_USER, &path, "IDLE_TIMEOUT").as_deref(),
            Some("10m")
        );
        delete(HKEY_CURRENT_USER, &path, "idle_timeout").unwrap();
        assert_eq!(text(HKEY_CURRENT_USER, &path, "idle_timeout"), None);
        delete(HKEY_CURRENT_USER, &path, "idle_timeout").unwrap();

        let name = wide(OsStr::new(&path));
        // SAFETY: a NUL-terminated name; the key and everything under it go.
        check(unsafe { RegDeleteTreeW(HKEY_CURRENT_USER, name.as_ptr()) }).unwrap();
        assert_eq!(policy(HKEY_CURRENT_USER, &path).unwrap(), None);
    }
}
