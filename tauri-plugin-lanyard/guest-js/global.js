// window.__TAURI__.lanyard, for apps with withGlobalTauri and no bundler: the same
// functions as index.js.
(() => {
  const { core, event } = window.__TAURI__;
  const identity = () => core.invoke('plugin:lanyard|identity');
  window.__TAURI__.lanyard = {
    signIn: () => core.invoke('plugin:lanyard|sign_in'),
    identity,
    accessToken: ({ minValid = 60 } = {}) => core.invoke('plugin:lanyard|access_token', { minValid }),
    signOut: () => core.invoke('plugin:lanyard|sign_out'),
    // The event carries nothing; the identity comes from `identity()`, which needs
    // `lanyard:allow-identity`: a webview without it is not called back.
    onChange: (callback) => event.listen('lanyard://changed', () => identity().then(callback, () => {})),
  };
})();
