// tauri-plugin-lanyard's web API, for apps with a bundler:
//   import { signIn, identity, accessToken, signOut, onChange } from 'tauri-plugin-lanyard-api';
// Apps without one (withGlobalTauri) get the same functions as window.__TAURI__.lanyard
// (global.js). Every call rejects with {message, kind} on failure
// (a call the app's capabilities do not allow, with Tauri's message, a string).

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

/** Signs in in the system browser; resolves with who signed in. */
export const signIn = () => invoke('plugin:lanyard|sign_in');

/** Who is signed in, or null. */
export const identity = () => invoke('plugin:lanyard|identity');

/** An access token valid for at least `minValid` seconds (needs `lanyard:allow-access-token`). */
export const accessToken = ({ minValid = 60 } = {}) =>
  invoke('plugin:lanyard|access_token', { minValid });

/** Signs out: revokes, forgets, and ends the provider's session. */
export const signOut = () => invoke('plugin:lanyard|sign_out');

/**
 * Calls `callback` with the identity after each sign-in, and null after sign-out. The
 * event itself carries nothing: the identity comes from `identity()`, so a webview not
 * granted `lanyard:allow-identity` is not called back.
 */
export const onChange = (callback) =>
  listen('lanyard://changed', () => identity().then(callback, () => {}));
