// window.__TAURI__.lanyard, for apps with withGlobalTauri and no bundler: the same
// functions as index.js.
(() => {
  const { core, event } = window.__TAURI__;
  window.__TAURI__.lanyard = {
    signIn: () => core.invoke('plugin:lanyard|sign_in'),
    identity: () => core.invoke('plugin:lanyard|identity'),
    accessToken: ({ minValid = 60 } = {}) => core.invoke('plugin:lanyard|access_token', { minValid }),
    signOut: () => core.invoke('plugin:lanyard|sign_out'),
    onChange: (callback) => event.listen('lanyard://changed', (e) => callback(e.payload)),
  };
})();
